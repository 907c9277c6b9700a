"""The final step's values are the same wherever primer shows them: the console's last block,
metrics.json, the last point of each train/* curve in TensorBoard and its HPARAMS metrics,
whatever max_steps and log_every_n_steps are."""

import json

import pytest
from tensorboard import context
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.backend.event_processing.data_provider import MultiplexerDataProvider
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from primer.run.dashboard import KEY_METRICS
from primer.cli.train import fit_run
from tests.conftest import QUIET, run_cli
from tests.test_what_a_run_shows import _get, run_dirs, tensorboard_of  # noqa: F401 (a fixture)

SMALL = ["data.input_dim=8", "model.hidden_dim=4"]


def last_points(run_dir) -> dict[str, tuple[int, float]]:
    """(step, value) of the last point of every scalar curve, as TensorBoard's reader holds them."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: (events.Scalars(tag)[-1].step, events.Scalars(tag)[-1].value) for tag in events.Tags()["scalars"]}


def hparams_metrics(run_dir) -> dict[str, tuple[int, float]]:
    """(step, value) of each metric as the HPARAMS tab takes it: the data provider's last scalars."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(run_dir))
    multiplexer.Reload()
    provider = MultiplexerDataProvider(multiplexer, str(run_dir))
    last = provider.read_last_scalars(context.RequestContext(), experiment_id="", plugin_name="scalars")["."]
    return {tag: (datum.step, datum.value) for tag, datum in last.items()}


def console_metrics(out: str) -> dict[str, str]:
    """The metric lines of the closing block (`  train/loss  725.4`), as printed."""
    lines = out[out.rindex("done: "):].splitlines()
    return {words[0]: words[1] for line in lines if (words := line.split()) and words[0] in KEY_METRICS}


def assert_final_step_everywhere(run_dir, out: str, steps: int) -> None:
    saved = {k: float(v) for k, v in json.loads((run_dir / "metrics.json").read_text()).items()}
    train_tags = {k for k in saved if k.startswith("train/")}
    assert train_tags >= {"train/loss", "train/mse"}
    last, hparams = last_points(run_dir), hparams_metrics(run_dir)
    for tag in train_tags:
        assert last[tag] == (steps - 1, saved[tag]), tag  # Lightning counts steps from 0
        assert hparams[tag] == (steps - 1, saved[tag]), tag
    assert f"done: {steps} steps" in out
    shown = console_metrics(out)
    assert set(shown) == {"train/loss", "val/loss", "val/r2"}
    for name, text in shown.items():
        assert text == f"{saved[name]:.4g}" == f"{last[name][1]:.4g}"


SLOW = pytest.mark.slow  # the fast loop keeps two cases


@pytest.mark.parametrize("model, max_steps, every, epochs", [
    pytest.param("two_layer", 6, 2, 1, marks=SLOW),   # a multiple: the last step is an every-n step
    pytest.param("two_layer", 6, 4, 1, marks=SLOW),   # not a multiple
    ("two_layer", 6, 10, 1),  # log_every_n_steps > max_steps: no every-n step at all
    pytest.param("two_layer", 5, 0, 1, marks=SLOW),   # 0: only the first and the last step
    pytest.param("manual", 7, 3, 1, marks=SLOW),      # manual optimization
    ("two_layer", -1, 3, 2),  # two epochs of 5 steps: the last step of each is a logging step
])
def test_last_train_point_metrics_json_hparams_and_console_agree(make_config, tmp_path, capsys, model, max_steps,
                                                                  every, epochs):
    length = ["data.steps=5", f"trainer.max_epochs={epochs}"] if max_steps == -1 else []
    cfg = make_config(*SMALL, *QUIET, f"model={model}", f"trainer.max_steps={max_steps}",
                      f"trainer.log_every_n_steps={every}", *length)
    capsys.readouterr()
    fit_run(cfg)
    epoch_steps = cfg.data.steps
    steps = epoch_steps * epochs
    assert_final_step_everywhere(tmp_path / "run", capsys.readouterr().out, steps)
    # each logging step once: the first and the epochs' last added to Lightning's every n, never written twice
    logging_steps = sorted({1, *range(epoch_steps, steps + 1, epoch_steps), *(range(every, steps + 1, every) if every
                                                                              else ())})
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"scalars": 0})
    events.Reload()
    for tag in ("train/loss", "train/mse"):
        assert [p.step + 1 for p in events.Scalars(tag)] == logging_steps


def test_accumulated_batches_log_each_optimizer_step_once(make_config, tmp_path, capsys):
    """Under accumulate_grad_batches=2 an optimizer step takes two batches: the batch that completes a step
    logs it, once, and the progress lines count steps from 1 (not the step-0 batch, not each step twice)."""
    cfg = make_config(*SMALL, "trainer.enable_model_summary=false", "trainer.max_steps=6",
                      "trainer.log_every_n_steps=2", "trainer.accumulate_grad_batches=2", "data.steps=4")
    capsys.readouterr()
    fit_run(cfg)
    out = capsys.readouterr().out
    assert [line.split("  ")[0] for line in out.splitlines() if line.startswith("step ")] == ["step 1/6", "step 6/6"]
    assert_final_step_everywhere(tmp_path / "run", out, 6)
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"scalars": 0})
    events.Reload()
    for tag in ("train/loss", "train/mse"):  # 2 steps an epoch: its last step is a logging step too
        assert [p.step + 1 for p in events.Scalars(tag)] == [1, 2, 4, 6], tag


@pytest.mark.slow
def test_the_issue_command_shows_the_final_step_in_tensorboard_hparams(tmp_path, tensorboard_of):  # noqa: F811
    """`python -m primer.train trainer.max_steps=6 ...` (log_every_n_steps 10): the real TensorBoard's
    HPARAMS row and last train/loss point are the console's and metrics.json's final values."""
    result = run_cli("trainer.max_steps=6", *SMALL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path)
    assert_final_step_everywhere(run_dir, result.stdout, 6)
    saved = json.loads((run_dir / "metrics.json").read_text())

    url = tensorboard_of(tmp_path / "outputs")  # as the README says: tensorboard --logdir outputs
    run = run_dir.relative_to(tmp_path / "outputs").as_posix()
    while run not in (runs := _get(f"{url}/data/runs")):  # it loads the event files in the background
        pass
    assert runs == [run]
    groups = _get(f"{url}/data/plugin/hparams/session_groups", {
        "experimentName": "", "allowedStatuses": ["STATUS_SUCCESS"], "startIndex": 0, "sliceSize": 10,
        "colParams": [{"metric": {"tag": "train/loss"}}]})["sessionGroups"]
    ((loss,),) = [[m for m in g["metricValues"] if m["name"]["tag"] == "train/loss"] for g in groups]
    assert (loss["trainingStep"], loss["value"]) == (5, pytest.approx(saved["train/loss"], rel=1e-6))
