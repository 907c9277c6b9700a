"""A checkpoint is data: crafted checkpoints whose stored config would run code, write or overwrite files
are refused in one line (exit 2) by everything that reads them, and nothing in them runs.

Each crafted checkpoint is a checkpoint exactly as primer.train writes it (stored config and
overrides from primer.run.checkpoints.StoreConfig, the net's weights) with one change. The fast rows go
through `primer.eval`'s real entry point in this process; the slow ones start `python -m primer.eval`
and `python -m primer.train ... ckpt_path=` as a user would.
"""

import copy
import functools
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

import primer.eval as primer_eval
from primer.checks.checkpoint_files import check_resume, load_checkpoint
from primer.run.checkpoints import StoreConfig
from primer.cli.eval import eval_config
from primer.exits import BadConfig
from tests.conftest import MODELS, TINY, cli_env, compose_config, run_cli
from tests.test_checkpoint_io import model_checkpoint_state


class RunsCode:
    """Unpickling this creates `marker`: the payload a stored `torch.load(weights_only=False)` would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def stored_as_primer_writes(overrides: list[str]) -> dict:
    """checkpoint["primer"] of a run of these overrides, made as primer.train makes it, without training."""
    return copy.deepcopy(_stored(tuple(overrides)))


@functools.cache  # composing is most of a fast row's time
def _stored(overrides: tuple[str, ...]) -> dict:
    return StoreConfig(compose_config(Path("outputs/run"), overrides), list(overrides)).stored


def write_checkpoint(path: Path, stored: dict, change=lambda stored: None) -> Path:
    """A checkpoint holding `stored` and its net's weights at step 6, as primer.train saves one; `change` alters
    the stored config after the weights are made (the test never builds what it crafts)."""
    net = instantiate(stored["config"]["model"])
    change(stored)
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}, "global_step": 6,
                "loops": loops_at(6), "primer": stored}, path)
    return path


def loops_at(step: int, automatic: bool = True) -> dict:
    """checkpoint["loops"] as Lightning writes it after `step` optimizer steps, cut to the counters a resume
    starts from: the optimizer steps of automatic and of manual optimization, and the batches that stepped."""
    def steps(n):
        return {"total": {"ready": n, "completed": n}, "current": {"ready": n, "completed": n}}

    return {"fit_loop": {"epoch_loop.state_dict": {"_batches_that_stepped": step},
                         "epoch_loop.automatic_optimization.optim_progress":
                             {"optimizer": {"step": steps(step if automatic else 0)}},
                         "epoch_loop.manual_optimization.optim_step_progress": steps(0 if automatic else step)}}


@pytest.fixture
def files(tmp_path):
    """The files a payload would touch: `marker` (must never appear), `victim` (must keep its bytes),
    `pickled` (a pickle whose loading creates the marker) and `source` (what a copy would write over the victim)."""
    files = type("Files", (), {})()
    files.marker, files.victim = tmp_path / "marker", tmp_path / "victim.txt"
    files.pickled, files.source = tmp_path / "payload.pt", tmp_path / "source.txt"
    files.victim.write_text("the victim's own bytes\n")
    files.source.write_text("attacker's bytes\n")
    torch.save(RunsCode(files.marker), files.pickled)
    return files


def torch_load(f):
    return {"_target_": "torch.load", "f": str(f.pickled), "weights_only": False}


def open_for_writing(f):
    return {"_target_": "builtins.open", "file": str(f.victim), "mode": "w"}


def copy_over(f):
    return {"_target_": "shutil.copy", "src": str(f.source), "dst": str(f.victim)}


def put(key: str, node_of):
    """A change to the stored config: `key` (dotted) set to node_of(files)."""
    def change(stored, f):
        *parents, last = key.split(".")
        node = stored["config"]
        for parent in parents:
            node = node.setdefault(parent, {})
        node[last] = node_of(f)
    return change


def add_override(text_of):
    def change(stored, f):
        stored["overrides"].append(text_of(f))
    return change


CRAFTED = {  # row -> (change to a checkpoint as primer writes it, what the refusal line names)
    "torch.load-of-a-pickle": (put("model", torch_load), "model._target_=torch.load"),
    "open-mode-w-empties-a-file": (put("model", open_for_writing), "model._target_=builtins.open"),
    "shutil.copy-over-a-file": (put("model", copy_over), "model._target_=shutil.copy"),
    "env-interpolation": (put("data.seed", lambda f: "${oc.env:HOME}"), "data.seed=${oc.env:HOME}: an interpolation"),
    "interpolation-in-a-target": (put("model._target_", lambda f: "${oc.env:PRIMER_TARGET}"),
                                  "model._target_=${oc.env:PRIMER_TARGET}"),
    "target-in-a-list": (put("callbacks.model_checkpoint.dirpath", lambda f: [copy_over(f)]),
                         "callbacks.model_checkpoint.dirpath[0]._target_=shutil.copy"),
    "target-in-_args_": (put("model._args_", lambda f: [open_for_writing(f)]),
                         "model._args_[0]._target_=builtins.open"),
    "_partial_-target": (put("scheduler", lambda f: open_for_writing(f) | {"_partial_": True}),
                         "scheduler._target_=builtins.open"),
    "optimizer-target": (put("optimizer", lambda f: copy_over(f) | {"_partial_": True}),
                         "optimizer._target_=shutil.copy"),
    "callback-target": (put("callbacks.model_checkpoint", open_for_writing),
                        "callbacks.model_checkpoint._target_=builtins.open"),
    "logger-target": (put("logger.tensorboard", lambda f: {"_target_": "subprocess.run",
                                                           "args": ["touch", str(f.marker)]}),
                      "logger.tensorboard._target_=subprocess.run"),
    "nested-in-trainer": (put("trainer.profiler", torch_load), "trainer.profiler._target_=torch.load"),
    # a class primer's groups do build, where eval would build it: MLflow's store made at a path the file names
    "allowed-target-nested-in-trainer": (put("trainer.plugins", lambda f: {
        "_target_": "primer.run.trackers.MLflowRun", "tracking_uri": f"sqlite:///{f.marker}/mlflow.db"}),
        "trainer.plugins._target_=primer.run.trackers.MLflowRun: a _target_ primer's config groups never write there"),
    "allowed-target-as-the-model": (put("model", lambda f: {
        "_target_": "primer.run.trackers.MLflowRun", "tracking_uri": f"sqlite:///{f.marker}/mlflow.db"}),
        "model._target_=primer.run.trackers.MLflowRun: a _target_ primer's config groups never write there"),
    "_recursive_": (put("model._recursive_", lambda f: False), "model._recursive_=False: a _recursive_"),
    "target-in-an-override": (add_override(lambda f: "model._target_=builtins.open"),
                              "override model._target_=builtins.open"),
    "interpolation-in-an-override": (add_override(lambda f: "data.seed=${oc.env:HOME}"),
                                     "override data.seed=${oc.env:HOME}"),
    "hydra-key-in-an-override": (add_override(lambda f: "hydra.callbacks.x._target_=builtins.open"),
                                 "override hydra.callbacks.x._target_=builtins.open"),
    "target-in-a-dict-override": (add_override(lambda f: "+callbacks.evil={_target_:builtins.open,file:"
                                               f"{f.victim},mode:w}}"),
                                  "override callbacks.evil._target_=builtins.open"),
    "override-into-hydra's-package": (add_override(lambda f: "+callbacks@hydra.callbacks=default"),
                                      "override +callbacks@hydra.callbacks=default: a key"),
    "override-hydra-cannot-parse": (add_override(lambda f: "data.seed=1;touch marker"),
                                    "override data.seed=1;touch marker: not a command-line override"),
    "newline-in-an-override": (add_override(lambda f: "seed=1\nerror: forged line"),
                               "override 'seed=1\\nerror: forged line'"),
}


def crafted(row: str, tmp_path: Path, f) -> Path:
    change, _ = CRAFTED[row]
    stored = stored_as_primer_writes(TINY)
    return write_checkpoint(tmp_path / f"{row}.ckpt", stored, lambda stored: change(stored, f))


def assert_refused(code: int, err: str, path: Path, names: str, f) -> None:
    assert code == 2, err[-2000:]
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: ckpt_path={path}: refused: its stored config has {names}"), err
    assert not f.marker.exists()  # nothing ran
    assert f.victim.read_text() == "the victim's own bytes\n"  # nothing was written or overwritten
    assert not list(path.parent.glob("*.eval*.json"))  # and eval wrote no result


@pytest.mark.parametrize("row", CRAFTED)
def test_eval_refuses_a_crafted_checkpoint_in_one_line_and_runs_nothing(cli, tmp_path, files, row):
    path = crafted(row, tmp_path, files)
    code, _, err = cli(f"ckpt_path={path}", main=primer_eval.main, prog="primer.eval")
    assert_refused(code, err, path, CRAFTED[row][1], files)


@pytest.mark.parametrize("row", ["torch.load-of-a-pickle", "open-mode-w-empties-a-file", "shutil.copy-over-a-file"])
def test_the_payloads_do_harm_when_built(tmp_path, files, row):
    """What the guard stops is real: built as Hydra builds a stored config, each payload runs or writes."""
    stored = stored_as_primer_writes(TINY)
    CRAFTED[row][0](stored, files)
    instantiate(stored["config"]["model"])
    assert files.marker.exists() or files.victim.read_text() != "the victim's own bytes\n"


@pytest.mark.slow
@pytest.mark.parametrize("row", ["torch.load-of-a-pickle", "open-mode-w-empties-a-file", "shutil.copy-over-a-file"])
def test_the_eval_command_refuses_the_crafted_checkpoints_of_the_issue(tmp_path, files, row):
    path = crafted(row, tmp_path, files)
    result = run_cli(f"ckpt_path={path}", module="primer.eval", cwd=tmp_path)
    assert_refused(result.returncode, result.stderr, path, CRAFTED[row][1], files)


@pytest.mark.slow
@pytest.mark.parametrize("row", ["shutil.copy-over-a-file", "target-in-an-override"])
def test_a_resume_from_a_crafted_checkpoint_is_refused_before_its_run_dir_is_made(tmp_path, files, row):
    path = crafted(row, tmp_path, files)
    result = run_cli(*TINY, "trainer.max_steps=8", f"ckpt_path={path}", cwd=tmp_path)
    assert_refused(result.returncode, result.stderr, path, CRAFTED[row][1], files)
    assert not (tmp_path / "outputs").exists()


def test_the_overrides_a_refusal_repeats_are_quoted_for_the_shell(tmp_path):
    """A stored override Hydra accepts may still hold shell syntax (`|`); the hint a user pastes quotes it."""
    stored = stored_as_primer_writes(TINY)
    stored["overrides"].append("data.seed=0|sh")
    path = write_checkpoint(tmp_path / "final.ckpt", stored)
    with pytest.raises(BadConfig, match=r"trained with: .* 'data.seed=0\|sh'$"):
        check_resume(compose_config(tmp_path / "run", [*TINY, "model.hidden_dim=5", f"ckpt_path={path}"]))


def with_a_checkpoint_state(path: Path, best_model_path: str) -> Path:
    """The checkpoint at `path`, its ModelCheckpoint state (as Lightning saves it) naming `best_model_path`."""
    checkpoint = torch.load(path, weights_only=True)
    key = ("ModelCheckpoint{'monitor': None, 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1, "
           "'train_time_interval': None}")
    checkpoint["callbacks"] = checkpoint.get("callbacks", {}) | {key: {
        "monitor": None, "best_model_score": None, "best_model_path": best_model_path, "current_score": None,
        "dirpath": str(path.parent), "best_k_models": {}, "kth_best_model_path": "", "last_model_path": ""}}
    torch.save(checkpoint, path)
    return path


def test_a_checkpoint_state_naming_a_file_out_of_its_dir_is_refused(tmp_path, files):
    path = write_checkpoint(tmp_path / "final.ckpt", stored_as_primer_writes(TINY))
    load_checkpoint(with_a_checkpoint_state(path, str(tmp_path / "checkpoints/final.ckpt")))  # as primer writes it
    with_a_checkpoint_state(path, f"{tmp_path}/run/checkpoints/../../{files.victim.name}")
    with pytest.raises(BadConfig, match=r"refused: its ModelCheckpoint state has best_model_path '.*/\.\./victim"):
        load_checkpoint(path)


@pytest.mark.slow
def test_a_resume_into_a_known_run_dir_deletes_nothing_a_checkpoint_names(tmp_path, files):
    """With hydra.run.dir given (as for ckpt_path=last), the new checkpoint dir is known in advance; Lightning's
    ModelCheckpoint would delete the restored best_model_path `<that dir>/../../victim` after its first save."""
    trained = run_cli(*TINY, f"hydra.run.dir={tmp_path}/first", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    path = with_a_checkpoint_state(tmp_path / "first/checkpoints/final.ckpt",
                                   f"{tmp_path}/run/checkpoints/../../{files.victim.name}")
    result = run_cli(*TINY, "trainer.max_steps=8", f"hydra.run.dir={tmp_path}/run", f"ckpt_path={path}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and "a resume would delete" in result.stderr, result.stderr
    assert files.victim.read_text() == "the victim's own bytes\n"
    assert not (tmp_path / "run").exists()


# --- nothing a checkpoint names is deleted; every field is checked, and a check that fails refuses ------------

def in_state(**paths):
    return lambda checkpoint, victim: checkpoint.update(callbacks=model_checkpoint_state(
        **{k: v.format(victim=victim) if isinstance(v, str) else v for k, v in paths.items()}))


def best_k(path):
    return lambda checkpoint, victim: checkpoint.update(callbacks=model_checkpoint_state(
        best_k_models={path.format(victim=victim): torch.tensor(1.0)}))


def loop_counter(*keys, value):
    def change(checkpoint, victim):
        node = checkpoint["loops"]["fit_loop"]
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return change


AUTOMATIC_STEPS = ("epoch_loop.automatic_optimization.optim_progress", "optimizer", "step", "total", "completed")
MANUAL_STEPS = ("epoch_loop.manual_optimization.optim_step_progress", "total", "completed")


def stored(key, value):
    def change(checkpoint, victim):
        *groups, last = key.split(".")
        node = checkpoint["primer"]["config"]
        for group in groups:
            node = node[group]
        node[last] = value
    return change


REFUSED_STATE = {  # a checkpoint as primer writes it, one field changed -> what the refusal line says after "its "
    "best_model_path-local://": (in_state(best_model_path="local://{victim}"),
                                 "ModelCheckpoint state has best_model_path 'local:///"),
    "last_model_path-file://": (in_state(last_model_path="file://{victim}"),
                                "ModelCheckpoint state has last_model_path 'file:///"),
    "kth_best_model_path-relative": (in_state(kth_best_model_path="victim"),
                                     "ModelCheckpoint state has kth_best_model_path 'victim'"),
    "best_model_path-with-..": (in_state(best_model_path="/runs/a/checkpoints/../../{victim}"),
                                "ModelCheckpoint state has best_model_path '/runs/a/checkpoints/../.."),
    "best_model_path-not-a-string": (in_state(best_model_path=["/x"]),
                                     "ModelCheckpoint state has best_model_path ['/x']"),
    "a-best_k_models-key-local://": (best_k("local://{victim}"), "ModelCheckpoint state has best_k_models 'local:"),
    "callbacks-a-list": (lambda c, v: c.update(callbacks=[1]), "callbacks are not callback states by name"),
    "_convert_-a-list": (stored("model._convert_", [1]), "stored config has model._convert_=[1]: a _convert_"),
    "stored-model-a-list": (stored("model", [1]), "stored config has no model group"),
    "global_step-a-string": (lambda c, v: c.update(global_step="3"), "global_step is '3', not a count of steps"),
    "state_dict-a-list": (lambda c, v: c.update(state_dict=[1]), "state_dict is a list, not weights by name"),
    "a-weight-not-a-tensor": (lambda c, v: c["state_dict"].update({"net.extra": "x"}),
                              "state_dict has 'net.extra': a str, not a tensor"),
    "loops-ahead-of-global_step": (loop_counter(*AUTOMATIC_STEPS, value=1000),
                                   f"loops.fit_loop.{'.'.join(AUTOMATIC_STEPS)} is 1000 and its global_step 6"),
    "global_step-ahead-of-the-loops": (lambda c, v: c.update(global_step=1000),
                                       f"loops.fit_loop.{'.'.join(AUTOMATIC_STEPS)} is 6 and its global_step 1000"),
    "manual-steps-in-an-automatic-run": (loop_counter(*MANUAL_STEPS, value=6),
                                         f"loops.fit_loop.{'.'.join(MANUAL_STEPS)} is 6 and its global_step 6"),
    "batches-that-stepped-ahead": (loop_counter("epoch_loop.state_dict", "_batches_that_stepped", value=1000),
                                   "loops.fit_loop.epoch_loop.state_dict._batches_that_stepped is 1000"),
    "a-counter-a-bool": (loop_counter(*AUTOMATIC_STEPS, value=True),
                         f"loops.fit_loop.{'.'.join(AUTOMATIC_STEPS)} is True, not a count of steps"),
}


@pytest.mark.parametrize("row", REFUSED_STATE)
def test_a_resume_from_a_checkpoint_with_a_field_primer_never_writes_is_refused_in_one_line(cli, tmp_path, row):
    """Each was a UserWarning from Hydra and a run that went on unchecked (or a traceback, or a dir deleted)."""
    victim = tmp_path / "victim"
    (victim / "keep").mkdir(parents=True)
    path = write_checkpoint(tmp_path / "final.ckpt", stored_as_primer_writes(TINY))
    checkpoint = torch.load(path, weights_only=True)
    REFUSED_STATE[row][0](checkpoint, victim)
    torch.save(checkpoint, path)
    code, _, err = cli(*TINY, "trainer.max_steps=12", f"ckpt_path={path}")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err[-2000:]
    assert err.startswith(f"error: ckpt_path={path}: refused: its {REFUSED_STATE[row][1]}"), err
    assert (victim / "keep").is_dir() and not (tmp_path / "outputs").exists()


def test_a_checkpoint_of_manual_optimization_counts_its_steps_there(tmp_path):
    """model=manual steps its optimizer itself: Lightning counts (and resumes) its steps in manual optimization's
    counter, and a model=manual checkpoint with its steps in the automatic one is not one Lightning wrote."""
    path = write_checkpoint(tmp_path / "final.ckpt", stored_as_primer_writes([*TINY, "model=manual"]))
    cfg = compose_config(tmp_path / "run", [*TINY, "model=manual", "trainer.max_steps=8", f"ckpt_path={path}"])
    torch.save(torch.load(path, weights_only=True) | {"loops": loops_at(6, automatic=False)}, path)
    check_resume(cfg)
    torch.save(torch.load(path, weights_only=True) | {"loops": loops_at(6, automatic=True)}, path)
    with pytest.raises(BadConfig, match=r"manual_optimization\.optim_step_progress\.total\.completed is 0 and its "
                                        r"global_step 6"):
        check_resume(cfg)


def test_a_checkpoint_saved_inside_a_step_resumes(tmp_path):
    """ModelCheckpoint's every_n_train_steps saves before the step's batch is counted as one that stepped."""
    path = write_checkpoint(tmp_path / "final.ckpt", stored_as_primer_writes(TINY))
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"] = 5
    torch.save(checkpoint, path)
    check_resume(compose_config(tmp_path / "run", [*TINY, "trainer.max_steps=8", f"ckpt_path={path}"]))


def test_a_check_that_fails_on_a_checkpoint_refuses_it_naming_the_file(cli, tmp_path, monkeypatch):
    """Fail closed: any error inside a checkpoint's check is a refusal, not a warning and an unchecked run."""
    import primer.checks.checkpoint_files

    def broken(*args):
        raise KeyError("a case no check foresaw")

    monkeypatch.setattr(primer.checks.checkpoint_files, "check_stored_config", broken)
    path = write_checkpoint(tmp_path / "final.ckpt", stored_as_primer_writes(TINY))
    code, _, err = cli(*TINY, "trainer.max_steps=12", f"ckpt_path={path}")
    assert code == 2 and not (tmp_path / "outputs").exists(), err[-2000:]
    assert err == (f"error: ckpt_path={path}: refused: its check failed (KeyError: 'a case no check foresaw'); "
                   "nothing was run (HYDRA_FULL_ERROR=1 shows where)\n")


@pytest.mark.parametrize("args", [[], ["-m", "seed=1,2"]], ids=["run", "sweep"])
def test_a_check_that_fails_on_a_config_refuses_it_before_anything_runs(cli, tmp_path, monkeypatch, args):
    import primer.checks.validation

    def broken(cfg):
        raise ZeroDivisionError("a case no check foresaw")

    monkeypatch.setattr(primer.checks.validation, "check_scheduler_length", broken)
    code, _, err = cli(*args, *TINY)
    assert code == 2 and not (tmp_path / "outputs").exists(), err[-2000:]
    assert err == ("error: the command's config: refused: its check failed (ZeroDivisionError: a case no check "
                   "foresaw); nothing was run (HYDRA_FULL_ERROR=1 shows where)\n")


def test_a_job_checked_by_its_task_fails_closed_too(tmp_path, monkeypatch):
    """check_job also runs inside the task, for jobs Hydra starts elsewhere (submitit, joblib, Optuna's trials)."""
    import primer.checks.validation
    from primer.checks.preflight import check_job

    monkeypatch.setattr(primer.checks.validation, "check_scheduler_length", lambda cfg: [][0])
    with pytest.raises(BadConfig, match=r"^the command's config: refused: its check failed \(IndexError: "):
        check_job(compose_config(tmp_path / "run", TINY), multirun=True)


@pytest.mark.slow
def test_a_shared_checkpoint_naming_a_local_dir_deletes_nothing_and_is_refused(tmp_path):
    """The issue's case: best_model_path `local:///some/dir` (fsspec's local protocol, which Lightning's
    'is it in my dir?' test skips) had that dir deleted after the resumed run's first save, exit 0."""
    trained = run_cli(*TINY, f"hydra.run.dir={tmp_path}/first", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    victim = tmp_path / "some/dir"
    (victim / "keep").mkdir(parents=True)
    path = tmp_path / "first/checkpoints/final.ckpt"
    checkpoint = torch.load(path, weights_only=True)
    [state] = checkpoint["callbacks"].values()
    state["best_model_path"] = f"local://{victim}"
    torch.save(checkpoint, tmp_path / "gift.ckpt")
    result = run_cli(*TINY, "trainer.max_steps=12", "ckpt_path=gift.ckpt", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-2000:]
    assert "refused: its ModelCheckpoint state has best_model_path 'local://" in result.stderr
    assert (victim / "keep").is_dir() and not (tmp_path / "outputs").exists()


def drop(key):
    def change(checkpoint):
        checkpoint["primer"]["config"].pop(key)
    return change


MALFORMED = {  # a checkpoint that holds nothing harmful, but not what primer writes -> what the line says
    "no-model-group": (drop("model"), "its stored config has no model group"),
    "config-not-a-tree": (lambda c: c["primer"]["config"].update(model=[1]), "its stored config has no model group"),
    "optimizer-without-_partial_": (lambda c: c["primer"]["config"]["optimizer"].pop("_partial_"),
                                    "optimizer: TypeError"),
    "a-weight-the-model-lacks": (lambda c: c["state_dict"].update({"net.extra": torch.zeros(1)}),
                                 "the checkpoint's weights do not fit the model its config names"),
}


@pytest.mark.parametrize("row", MALFORMED)
def test_eval_of_a_checkpoint_primer_did_not_write_ends_in_one_line(cli, tmp_path, row):
    path = write_checkpoint(tmp_path / "final.ckpt", stored_as_primer_writes(TINY))
    checkpoint = torch.load(path, weights_only=True)
    MALFORMED[row][0](checkpoint)
    torch.save(checkpoint, path)
    code, _, err = cli(f"ckpt_path={path}", main=primer_eval.main, prog="primer.eval")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert MALFORMED[row][1] in err, err


def test_eval_writes_nothing_where_a_checkpoints_trainer_settings_point(cli, tmp_path):
    """A stored trainer.profiler=pytorch would write its traces into the stored trainer.default_root_dir."""
    stored = stored_as_primer_writes(TINY)
    stored["config"]["trainer"] |= {"profiler": "pytorch", "default_root_dir": str(tmp_path / "elsewhere")}
    path = write_checkpoint(tmp_path / "final.ckpt", stored)
    code, _, err = cli(f"ckpt_path={path}", main=primer_eval.main, prog="primer.eval")
    assert code == 0, err
    assert not (tmp_path / "elsewhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final.ckpt", "final.eval.json"]


def test_eval_of_a_checkpoint_of_several_nodes_runs_on_this_one(tmp_path):
    """Stored trainer.num_nodes=2 made primer.eval wait for a second node forever."""
    stored = stored_as_primer_writes(TINY)
    stored["config"]["trainer"]["num_nodes"] = 2
    path = write_checkpoint(tmp_path / "final.ckpt", stored)
    assert eval_config(str(path), [])[1].trainer.num_nodes == 1


# --- what primer writes still loads ------------------------------------------------------------------------

EARLY_STOPPING = ["+callbacks.early_stopping._target_=lightning.pytorch.callbacks.EarlyStopping",
                  "+callbacks.early_stopping.monitor=val/loss"]
LEGIT = [[f"model={m}"] for m in MODELS] + [["optimizer=adam"], ["scheduler=cosine"], ["scheduler=step"],
                                             ["data=teacher"], EARLY_STOPPING]


@pytest.mark.parametrize("overrides", LEGIT, ids=" ".join)
def test_a_checkpoint_as_primer_writes_it_loads_and_rebuilds(tmp_path, overrides):
    stored = stored_as_primer_writes([*TINY, *overrides])
    path = write_checkpoint(tmp_path / "final.ckpt", stored)
    cfg = eval_config(str(path), [])[1]
    stored["config"]["trainer"] |= {"profiler": None, "default_root_dir": None, "num_nodes": 1}  # eval's own
    assert OmegaConf.to_container(cfg) == stored["config"] | {"ckpt_path": None}  # the rest, as stored
    instantiate(cfg.model), instantiate(cfg.optimizer), instantiate(cfg.data)  # eval builds these


HOLD = ["+callbacks.hold._target_=tests.callbacks.HoldAtStep", "+callbacks.hold.step=3"]


def test_a_resume_accepts_a_stored_target_only_where_its_own_command_line_builds_it(tmp_path, files):
    """A run trained with +callbacks.NAME._target_=its.own.Class resumes with that override again; the same
    checkpoint is refused where the command does not build that class itself."""
    path = write_checkpoint(tmp_path / "final.ckpt", stored_as_primer_writes([*TINY, *HOLD]))
    check_resume(compose_config(tmp_path / "again", [*TINY, *HOLD, "trainer.max_steps=8", f"ckpt_path={path}"]))
    with pytest.raises(BadConfig, match=r"refused: its stored config has callbacks.hold._target_=tests.callbacks"):
        check_resume(compose_config(tmp_path / "again", [*TINY, "trainer.max_steps=8", f"ckpt_path={path}"]))


@pytest.mark.slow
def test_a_trained_checkpoint_with_adam_and_a_scheduler_is_evaluated(tmp_path):
    run_dir = tmp_path / "outputs/run"
    trained = run_cli(*TINY, "optimizer=adam", "scheduler=cosine", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    result = run_cli(f"ckpt_path={run_dir}/checkpoints/final.ckpt", module="primer.eval", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run_dir / "checkpoints/final.eval.json").is_file()


def test_eval_of_a_run_dir_scores_its_final_checkpoint_or_says_what_to_pass(cli, tmp_path):
    run = tmp_path / "outputs" / "runs" / "a"
    (run / "checkpoints").mkdir(parents=True)
    result = run_cli(f"ckpt_path={run}", module="primer.eval", cwd=tmp_path)  # the command: it needs no torch
    assert result.returncode == 2
    assert result.stderr == f"error: ckpt_path={run}: a dir without checkpoints/final.ckpt; give a checkpoint " \
                            f"file, e.g. one in {run / 'checkpoints'}\n"
    (run / "checkpoints" / "final.ckpt").write_text("not a checkpoint")  # the dir stands for this file
    code, _, err = cli(f"ckpt_path={run}", main=primer_eval.main, prog="primer.eval")  # torch reads it: in this process
    assert code == 2
    assert err.startswith(f"error: ckpt_path={run / 'checkpoints' / 'final.ckpt'}: not a checkpoint")


def test_eval_refuses_a_missing_file_before_importing_torch(tmp_path):
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "primer.eval", "ckpt_path=nothing.ckpt"],
                            cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.endswith("error: ckpt_path=nothing.ckpt: no such file\n")
    imported = {line.rpartition("|")[2].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "primer.exits" in imported and not {"torch", "lightning"} & imported
