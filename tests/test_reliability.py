"""Bad checkpoints, interruptions, divergence, evaluation and output dirs, through the real command line."""

import json
import os
import shlex
import signal
import subprocess
import threading

import pytest
import torch
from hydra.utils import instantiate

from primer import exits
from primer.exits import SWEEP_FAILED, Diverged
from primer.run.guards import StopOnNonFinite
from primer.sweeps.report import SweepSummary, job_dirs
from primer.cli.train import fit_run
from tests.callbacks import REACHED, SETTING_UP
from tests.conftest import QUIET, TINY, compose_config, read_checkpoint, run_cli, same_weights, start_cli


class RunsCode:
    """Unpickling this creates `marker`: what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished TINY run (two_layer, input_dim=8): its dir and final checkpoint."""
    run_dir = tmp_path_factory.mktemp("tiny") / "run"
    fit_run(compose_config(run_dir, TINY))
    return run_dir, run_dir / "checkpoints" / "final.ckpt"


def bad_checkpoint(kind, tmp_path, final):
    path = tmp_path / f"{kind}.ckpt"
    if kind == "text":
        path.write_text("not a checkpoint\n")
    elif kind == "pickled_code":
        torch.save({"state_dict": {}, "payload": RunsCode(tmp_path / "code_ran")}, path)
    elif kind == "no_stored_config":
        saved = read_checkpoint(final)
        del saved["primer"]
        torch.save(saved, path)
    else:
        path = final
    return path


BAD_CHECKPOINTS = [  # (checkpoint, extra overrides, message after "error: ckpt_path=<path>: ")
    ("missing", [], "no such file"),
    ("text", [], "not a checkpoint"),
    ("pickled_code", [], "refused: it holds pickled Python objects that could run code"),
    ("final", ["data.input_dim=9"], "made with model.input_dim=8, this run has model.input_dim=9; "
                                    "resume with the overrides it was trained with: trainer.max_steps=6"),
    ("final", ["model=autograd"], "made with model._target_=primer.tutorial.nets.TwoLayerNet, "
                                  "this run has model._target_=primer.tutorial.nets.FeedForwardNet"),
    ("no_stored_config", ["model.hidden_dim=5"], "made by a different model or shape: net.linear1.bias is (4,) there"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "extra", "message"), BAD_CHECKPOINTS,
                         ids=[f"{k}-{' '.join(e)}" for k, e, _ in BAD_CHECKPOINTS])
def test_bad_checkpoint_stops_in_one_line_before_training(tmp_path, tiny_run, kind, extra, message):
    path = tmp_path / "missing.ckpt" if kind == "missing" else bad_checkpoint(kind, tmp_path, tiny_run[1])
    before = path.read_bytes() if path.exists() else None
    result = run_cli(*TINY, *extra, f"ckpt_path={path}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith(f"error: ckpt_path={path}: {message}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "outputs").exists()
    assert (path.read_bytes() if path.exists() else None) == before  # the checkpoint is left as it was
    assert not (tmp_path / "code_ran").exists()  # the pickled code never ran


# The CSV logger, so that a resumed run's metrics can be compared with an uninterrupted one's.
LONG = ["trainer.max_steps=300", "data.input_dim=8", "model.hidden_dim=4", *QUIET, "logger=csv",
        "trainer.log_every_n_steps=5"]
STOP_AT = 40  # the step at which tests.callbacks.HoldAtStep waits for the signal
HOLD = ["+callbacks.hold._target_=tests.callbacks.HoldAtStep", f"+callbacks.hold.step={STOP_AT}"]
SAVED = "outputs/interrupted/checkpoints/interrupted.ckpt"


def interrupt(tmp_path, args, signum):
    """Starts a LONG run, sends it `signum` once it holds at step STOP_AT; its stderr's last line."""
    stdout = open(tmp_path / "stdout.txt", "w")  # a file: no pipe to fill while stderr is read
    run = start_cli(*HOLD, *args, "hydra.run.dir=outputs/interrupted", cwd=tmp_path,
                    stdout=stdout, stderr=subprocess.PIPE)
    watchdog = threading.Timer(300, run.kill)  # bounds a run that hangs before the marker; not a wait
    watchdog.start()
    try:
        before = []
        for line in run.stderr:  # blocks until the run prints the next line, or exits
            before.append(line)
            if line.startswith(REACHED):
                break
        assert before and before[-1] == f"{REACHED} {STOP_AT}\n", "".join(before)[-2000:]
        run.send_signal(signum)
        stderr = "".join(before) + run.stderr.read()
        run.wait()
    finally:
        watchdog.cancel()
        stdout.close()
    assert run.returncode == 128 + signum, stderr[-2000:]
    printed = (tmp_path / "stdout.txt").read_text()
    assert "Seed set to 0" in printed and "Received SIGTERM" not in printed  # not Lightning's "SIGTERM" for a Ctrl-C
    assert "Traceback" not in stderr
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"interrupted: {signal.Signals(signum).name} at step {STOP_AT} of 300: ")
    assert read_checkpoint(tmp_path / SAVED)["global_step"] == STOP_AT  # the step it was at, before the end
    return last_line


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "said"), [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_ctrl_c_or_sigterm_while_a_run_is_set_up_ends_in_one_line_and_leaves_no_run_dir(tmp_path, signum, said):
    run = start_cli(*TINY, "+callbacks.hold._target_=tests.callbacks.HoldInSetup", cwd=tmp_path,
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watchdog = threading.Timer(300, run.kill)  # bounds a run that hangs before the marker; not a wait
    watchdog.start()
    try:
        first = run.stderr.readline()  # blocks until the run reaches set-up, or exits
        assert first == f"{SETTING_UP}\n", first + run.stderr.read()[-2000:]
        assert len(list((tmp_path / "outputs/runs").iterdir())) == 1  # Hydra had made the run dir
        run.send_signal(signum)
        stderr = run.stderr.read()
        run.wait()
    finally:
        watchdog.cancel()
    assert run.returncode == 128 + signum, stderr[-2000:]
    assert stderr == f"interrupted: {said} before training started; nothing to resume\n"
    assert not (tmp_path / "outputs").exists()


def test_sigterm_before_the_task_starts_ends_like_ctrl_c(tmp_path, capsys):
    """SIGTERM while Hydra composes, checks or makes the run dir: one line, exit 143, the new dir removed."""
    from primer.run import run_dir

    fresh = tmp_path / "outputs"
    with pytest.raises(SystemExit) as ended, exits.command_line(), run_dir.given_back_unless_started():
        run_dir.claim(fresh / "runs/run", "hydra.run.dir=outputs/runs/run")  # as primer.train does before Hydra
        assert fresh.is_dir()
        os.kill(os.getpid(), signal.SIGTERM)  # Python runs the handler before the next line
        pytest.fail("SIGTERM did not end the command")
    assert ended.value.code == 143
    assert capsys.readouterr().err == "interrupted: SIGTERM before training started; nothing to resume\n"
    assert not fresh.exists() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored


def ctrl_c_after(call):
    """`call`, then Ctrl-C."""
    def called(*args, **kwargs):
        result = call(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        return result

    return called


@pytest.mark.slow  # trains in this process
# after the last step, inside fit (was: ignored, exit 0); as trainer.fit returns (Lightning gives back the handler it
# found; was "Ctrl-C before training started; nothing to resume"); as the run writes HPARAMS, its last act; in a Hydra
# callback's on_job_end, after the task returned (was "before training started")
@pytest.mark.parametrize("when", ["last step taken", "fit returned", "hparams written", "job ended"])
def test_ctrl_c_after_training_ended_says_so_and_where_the_run_is(cli, tmp_path, monkeypatch, when):
    import lightning

    import primer.run.experiment

    run = "outputs/runs/run"  # in runs/: the run writes its HPARAMS file there
    if when == "last step taken":
        monkeypatch.setattr(StopOnNonFinite, "on_train_end", ctrl_c_after(StopOnNonFinite.on_train_end))
    elif when == "fit returned":
        monkeypatch.setattr(lightning.Trainer, "fit", ctrl_c_after(lightning.Trainer.fit))
    elif when == "hparams written":
        monkeypatch.setattr(primer.run.experiment, "write_experiment", ctrl_c_after(lambda logdir: None))
    else:
        monkeypatch.setattr(SweepSummary, "on_job_end", ctrl_c_after(SweepSummary.on_job_end))
    code, _, err = cli(*TINY, *QUIET, f"hydra.run.dir={run}")
    assert code == 130
    said = err.strip().splitlines()[-1]
    assert said == f"interrupted: Ctrl-C after training ended; its checkpoints and logs are in {tmp_path / run}"
    assert (tmp_path / run / "checkpoints/final.ckpt").is_file()


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_says_how_to_resume(tmp_path):
    last_line = interrupt(tmp_path, [*LONG, "model=manual", "optimizer.lr=1e-6"], signal.SIGTERM)
    assert f"saved {SAVED}; resume with: python -m primer.train " in last_line
    assert last_line.endswith(f"model=manual optimizer.lr=1e-6 ckpt_path={SAVED}")
    reason = (tmp_path / "outputs/interrupted/failure.txt").read_text()  # the run dir says why it stopped
    assert reason == f"Interrupted: {last_line.removeprefix('interrupted: ')}\n"


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_uninterrupted_result_bit_for_bit(tmp_path):
    """Ctrl-C mid-training, then the printed resume command: the same weights and metrics as one run."""
    args = [*LONG, "optimizer=adam"]
    last_line = interrupt(tmp_path, args, signal.SIGINT)

    command = last_line.partition("resume with: ")[2]
    assert command.startswith("python -m primer.train ") and command.endswith(f"ckpt_path={SAVED}")
    resumed = run_cli(*shlex.split(command)[3:], "hydra.run.dir=outputs/resumed", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    fit_run(compose_config(tmp_path / "outputs/uninterrupted", args))

    runs = {name: tmp_path / "outputs" / name for name in ("resumed", "uninterrupted")}
    final = {name: read_checkpoint(d / "checkpoints/final.ckpt") for name, d in runs.items()}
    assert final["resumed"]["global_step"] == final["uninterrupted"]["global_step"] == 300
    assert same_weights(final["resumed"]["state_dict"], final["uninterrupted"]["state_dict"])
    metrics = {name: json.loads((d / "metrics.json").read_text()) for name, d in runs.items()}
    assert metrics["resumed"] == metrics["uninterrupted"]  # train/loss and val/loss included, exactly


DIVERGE = [*TINY, "trainer.max_steps=50", "optimizer.lr=10", *QUIET]


def test_diverging_run_stops_at_the_first_non_finite_step_keeping_finite_checkpoints(make_config, tmp_path):
    cfg = make_config(*DIVERGE, "+callbacks.model_checkpoint.every_n_train_steps=1")
    message = r"train/loss is (nan|inf) at step \d+ of 50; try a smaller optimizer.lr"
    with pytest.raises(Diverged, match=message) as info:
        fit_run(cfg)
    step = int(str(info.value).split(" at step ")[1].split()[0])
    kept_path = tmp_path / "run/checkpoints/final.ckpt"  # saved after every step until the bad one
    assert str(info.value).endswith(f"last finite checkpoint: {kept_path}")
    kept = read_checkpoint(kept_path)
    assert kept["global_step"] == step - 1
    assert all(torch.isfinite(w).all() for w in kept["state_dict"].values())
    # The kept weights are the ones the bad step started from: their loss is the first non-finite one.
    datamodule, net = instantiate(cfg.data), instantiate(cfg.model)
    datamodule.setup()
    net.load_state_dict({k.removeprefix("net."): v for k, v in kept["state_dict"].items()})
    x, y = datamodule.train_batch
    assert not torch.isfinite(((net(x) - y) ** 2).sum())


@pytest.mark.parametrize("model, advice", [
    ("autograd", "(this run: 10; the tutorial trains model=autograd at 1e-06: experiment=2_feed_forward_net)"),
    # no preset: not in the tutorial
    ("custom_relu", "(this run: 10; the tutorial trains model=custom_relu at 0.0001)"),
])
def test_divergence_names_the_lr_the_tutorial_trains_the_model_at(make_config, model, advice):
    with pytest.raises(Diverged) as info:
        fit_run(make_config(*DIVERGE, f"model={model}"))
    assert f"try a smaller optimizer.lr {advice}; " in str(info.value)


def test_divergence_of_a_run_of_epochs_names_the_steps_lightning_counts(make_config):
    with pytest.raises(Diverged, match=r"train/loss is (nan|inf) at step \d+ of 60; "):
        fit_run(make_config(*DIVERGE, "trainer.max_steps=-1", "trainer.max_epochs=2", "data.steps=30"))


def test_divergence_under_accumulated_batches_names_the_optimizer_step(make_config):
    """Two identical batches a step give the gradient of one (Lightning averages them), so the run goes bad at
    the same optimizer step, and the message names that step, not the batch count or the steps already taken."""
    messages = []
    for accumulate in (1, 2):
        with pytest.raises(Diverged) as info:
            fit_run(make_config(*DIVERGE, f"trainer.accumulate_grad_batches={accumulate}", subdir=f"acc{accumulate}"))
        messages.append(str(info.value).split("; last finite")[0].split("; no checkpoint")[0])
    assert messages[0] == messages[1] and " at step 3 of 50" in messages[0], messages


def test_run_diverging_between_logging_steps_names_its_first_non_finite_step(make_config, monkeypatch):
    """The loss is read on logging steps only (every 10th; with 0, the first and last, and before
    validation), and folded on its device every FOLD steps in between: the message is the one a check
    of every step gives."""

    def message(every: int, fold: int = StopOnNonFinite.FOLD) -> str:
        monkeypatch.setattr(StopOnNonFinite, "FOLD", fold)
        with pytest.raises(Diverged) as info:
            fit_run(make_config(*DIVERGE, f"trainer.log_every_n_steps={every}", subdir=f"every{every}"))
        return str(info.value)

    checked_every_step = message(1)
    step = int(checked_every_step.split(" at step ")[1].split()[0])
    assert 1 < step < 10  # between logging steps
    assert message(10) == checked_every_step
    assert message(0, fold=1) == checked_every_step  # folded after each step, read at the end


@pytest.mark.slow
def test_diverging_command_line_run_exits_3_with_one_line(tmp_path):
    result = run_cli(*DIVERGE, cwd=tmp_path)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: training diverged: train/loss is ")
    assert last_line.endswith("try a smaller optimizer.lr (this run: 10; the tutorial trains model=two_layer at "
                              "0.0001: experiment=5_class_based_declaration); no checkpoint was saved")
    (run_dir,) = (tmp_path / "outputs/runs").iterdir()
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.json").exists()
    assert (run_dir / "failure.txt").read_text() == f"Diverged: {last_line.removeprefix('error: ')}\n"


@pytest.mark.slow
def test_diverging_job_of_a_sweep_fails_alone(tmp_path):
    result = run_cli("-m", *DIVERGE, "optimizer.lr=10,1e-4", cwd=tmp_path)
    (sweep,) = (tmp_path / "outputs/multirun").iterdir()
    diverged, finished = job_dirs(sweep)
    assert not (diverged / "metrics.json").exists()  # lr=10
    assert (finished / "metrics.json").is_file() and (finished / "checkpoints/final.ckpt").is_file()
    assert "training diverged" in (diverged / "failure.txt").read_text()
    assert result.returncode == SWEEP_FAILED
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: 1 of 2 jobs failed; see ")


@pytest.mark.slow
def test_eval_rebuilds_the_run_from_its_checkpoint_and_matches_its_metrics(tmp_path, tiny_run):
    run_dir, final = tiny_run
    result = run_cli(f"ckpt_path={final}", module="primer.eval", cwd=tmp_path)  # no training overrides
    assert result.returncode == 0, result.stderr[-2000:]
    printed = json.loads(result.stdout)
    assert printed == json.loads((run_dir / "checkpoints/final.eval.json").read_text())
    trained = json.loads((run_dir / "metrics.json").read_text())
    val = {k: v for k, v in trained.items() if k.startswith("val/")}
    assert {k: v for k, v in printed.items() if k.startswith("val/")} == val
    assert {f"test/{m}" for m in ("loss", "mse", "r2", "explained_variance")} <= set(printed)


@pytest.mark.slow
def test_eval_refuses_a_checkpoint_that_would_run_code(tmp_path, tiny_run):
    path = bad_checkpoint("pickled_code", tmp_path, tiny_run[1])
    result = run_cli(f"ckpt_path={path}", module="primer.eval", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith(f"error: ckpt_path={path}: refused: ")
    assert result.stderr.count("\n") == 1 and not (tmp_path / "code_ran").exists()


@pytest.mark.slow
def test_runs_started_together_get_their_own_dirs(tmp_path):
    runs = [start_cli(*TINY, f"seed={seed}", cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for seed in (1, 2)]
    assert all(run.wait(timeout=300) == 0 for run in runs)
    run_dirs = sorted((tmp_path / "outputs/runs").iterdir())
    assert len(run_dirs) == 2
    seeds = sorted(read_checkpoint(d / "checkpoints/final.ckpt")["primer"]["config"]["seed"] for d in run_dirs)
    assert seeds == [1, 2] and all((d / "metrics.json").is_file() for d in run_dirs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_divergence_is_caught_without_a_per_step_sync_and_keeps_finite_checkpoints(make_config, tmp_path):
    """The flag is read on logging and saving steps only (every 2nd here), before a checkpoint is written:
    the message names the first bad step all the same, and the last checkpoint before it stays."""
    cfg = make_config(*DIVERGE, "trainer=gpu", "+callbacks.model_checkpoint.every_n_train_steps=2")
    with pytest.raises(Diverged, match=r"train/loss is (nan|inf) at step \d+ of 50") as info:
        fit_run(cfg)
    step = int(str(info.value).split(" at step ")[1].split()[0])
    kept = read_checkpoint(tmp_path / "run/checkpoints/final.ckpt")
    assert kept["global_step"] == (step - 1) // 2 * 2  # the last save before the bad step
    assert all(torch.isfinite(w).all() for w in kept["state_dict"].values())


# --- a run into a dir used before: the dir holds one run's results -------------------------------------------

AGAIN = [*TINY, *QUIET, "hydra.run.dir=outputs/run"]


def curve(run_dir, tag="train/loss"):
    """The (step, value) points TensorBoard shows for `tag`, from every event file in the dir."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def hparams_yaml(run_dir) -> dict:
    import yaml

    return yaml.safe_load((run_dir / "hparams.yaml").read_text())


@pytest.mark.slow  # trains in this process
def test_a_run_into_a_dir_used_before_replaces_the_earlier_runs_results(cli, tmp_path):
    run_dir = tmp_path / "outputs/run"
    assert cli(*AGAIN)[0] == 0
    code, out, err = cli(*AGAIN, "optimizer.lr=0.0002")
    assert code == 0, err[-3000:]
    assert ("outputs/run held an earlier run; this run replaces it: removed its metrics.json, run.json, hparams.yaml "
            "and 1 TensorBoard event file (its checkpoints stay until this run saves its own)\n") in out
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    points = curve(run_dir)
    assert [step for step, _ in points] == [0, 1, 3, 5]  # one curve, not the two runs' drawn over each other
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert points[-1][1] == pytest.approx(metrics["train/loss"])
    assert hparams_yaml(run_dir)["optimizer.lr"] == 0.0002  # Lightning kept the earlier run's (lr 0.0001)
    assert read_checkpoint(run_dir / "checkpoints/final.ckpt")["primer"]["config"]["optimizer"]["lr"] == 0.0002


@pytest.mark.slow
def test_lightnings_not_empty_warning_is_dropped_for_the_run_dirs_own_checkpoints_only(tmp_path):
    """The earlier run's checkpoints stay in a used run dir by design, and primer's line says so; a dirpath
    elsewhere that holds files keeps Lightning's warning."""
    again = [*TINY, *QUIET, "hydra.run.dir=outputs/run"]
    assert run_cli(*again, cwd=tmp_path).returncode == 0
    second = run_cli(*again, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    shown = second.stdout + second.stderr + (tmp_path / "outputs/run/train.log").read_text()
    assert "held an earlier run; this run replaces it" in shown
    assert "exists and is not empty" not in shown
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/kept.ckpt").write_text("someone's")
    third = run_cli(*again, "callbacks.model_checkpoint.dirpath=elsewhere", cwd=tmp_path)
    assert third.returncode == 0, third.stderr[-3000:]
    assert f"Checkpoint directory {os.path.realpath(tmp_path / 'elsewhere')} exists and is not empty." in third.stderr


@pytest.mark.slow  # trains in this process
def test_a_failed_run_into_a_dir_used_before_leaves_no_result_of_the_earlier_run(cli, tmp_path):
    run_dir = tmp_path / "outputs/run"
    assert cli(*AGAIN)[0] == 0
    code, _, err = cli(*AGAIN, "optimizer.lr=1000")
    assert code == 3, err[-3000:]
    assert (run_dir / "failure.txt").read_text().startswith("Diverged: training diverged")
    assert not (run_dir / "metrics.json").exists()  # the earlier run's would say this one trained well
    assert hparams_yaml(run_dir)["optimizer.lr"] == 1000 and len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    code, _, err = cli(*AGAIN)  # and fixed: the failure is not left beside the good run
    assert code == 0, err[-3000:]
    assert not (run_dir / "failure.txt").exists() and (run_dir / "metrics.json").is_file()


@pytest.mark.slow  # trains in this process
def test_a_resume_into_its_own_dir_keeps_the_curve_it_goes_on_from(cli, tmp_path):
    run_dir = tmp_path / "outputs/run"
    assert cli(*AGAIN)[0] == 0
    code, out, err = cli(*AGAIN, "trainer.max_steps=8", "ckpt_path=outputs/run/checkpoints/final.ckpt")
    assert code == 0, err[-3000:]
    assert "held an earlier run" not in out
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 2
    assert [step for step, _ in curve(run_dir)] == [0, 1, 3, 5, 7]  # the resumed steps go on from the first run's
    assert json.loads((run_dir / "run.json").read_text())["resumed_at_step"] == 6
    assert hparams_yaml(run_dir)["trainer.max_steps"] == 8  # this run's


@pytest.mark.slow  # trains in this process
def test_a_run_that_fails_in_set_up_leaves_the_earlier_run_in_its_dir_as_it_was(make_config, tmp_path, monkeypatch):
    from primer.run.system import Regression

    fit_run(make_config(*TINY))
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file() and ".hydra" not in p.parts}

    def fails(*args, **kwargs):
        raise RuntimeError("a first step that never ends")

    monkeypatch.setattr(Regression, "training_step", fails)
    with pytest.raises(exits.BadConfig, match="trainer.fit: RuntimeError: a first step that never ends"):  # exit 2
        fit_run(make_config(*TINY, "optimizer.lr=0.0002"))
    after = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file() and ".hydra" not in p.parts}
    assert after == before  # not even the failed run's own event file is left to mix with the earlier run's
