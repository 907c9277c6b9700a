"""Every ending reports the step it ended on, and why: a run stopped between logging steps (max_time, early
stopping, a callback) shows that step's values in the console, metrics.json and TensorBoard, and says what
stopped it; an anomaly found by trainer.detect_anomaly is a divergence; the divergence line blames the data
when they are not finite, and names only a checkpoint this run wrote or resumed from."""

import json
import re
import shutil
import warnings

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from primer import exits
from primer.cli.train import fit_run
from primer.exits import Diverged
from primer.run.data import SyntheticRegression
from tests.conftest import QUIET, TINY, compose_config
from tests.test_final_step import SMALL, assert_final_step_everywhere

EARLY_STOPPING = ["+callbacks.early_stopping._target_=lightning.pytorch.callbacks.EarlyStopping",
                  "+callbacks.early_stopping.monitor=val/loss", "trainer.val_check_interval=5", "optimizer.lr=3e-3"]
# log_every_n_steps=10 (the default): steps 7 and 15 are not logging steps
STOPS = {
    "a callback": (["+callbacks.stop._target_=tests.callbacks.StopAtStep", "+callbacks.stop.step=7"], 7,
                   r"a callback set trainer\.should_stop"),
    "max_time": (["trainer.max_time=00:00:10:00", "+callbacks.clock._target_=tests.callbacks.TimeRunsOutAtStep",
                  "+callbacks.clock.step=7"], 7,
                 r"time limit 0:10:00 reached \(trainer\.max_time or a Timer callback\)"),
    "a threshold": ([*EARLY_STOPPING, "+callbacks.early_stopping.stopping_threshold=590"], 15,
                    r"early stopping: val/loss (?P<value>\S+) reached stopping_threshold 590"),
    # mode=max on a falling loss: the checks at steps 10 and 15 do not improve on step 5's
    "patience": ([*EARLY_STOPPING, "+callbacks.early_stopping.mode=max", "+callbacks.early_stopping.patience=2"],
                 15, r"early stopping: val/loss did not improve on \S+ in 2 checks \(patience 2\)"),
}


@pytest.mark.parametrize("why", list(STOPS))
def test_a_run_stopped_between_logging_steps_shows_that_step_and_says_why(make_config, tmp_path, capsys, why):
    overrides, step, reason = STOPS[why]
    run = [*SMALL, *QUIET, "trainer.max_steps=50", *overrides]
    capsys.readouterr()
    fit_run(make_config(*run))
    out = capsys.readouterr().out
    run_dir = tmp_path / "run"
    assert_final_step_everywhere(run_dir, out, step)
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    for tag in ("train/loss", "train/mse"):  # each logging step once, and the last: no older values at the last
        assert [p.step + 1 for p in events.Scalars(tag)] == sorted({1, *range(10, step, 10), step}), tag
    stopped = json.loads((run_dir / "run.json").read_text())["stopped_by"]
    assert (found := re.fullmatch(reason, stopped)), stopped
    if "value" in found.groupdict():
        assert found["value"] == f"{json.loads((run_dir / 'metrics.json').read_text())['val/loss']:.4g}"
    block = out[out.rindex("done: "):].splitlines()
    assert block[1] == f"  stopped by  {stopped}"

    # the values shown are those of that step: a run that logs every step shows the same
    fit_run(make_config(*run, "trainer.log_every_n_steps=1", subdir="every_step"))
    every_step = json.loads((tmp_path / "every_step/metrics.json").read_text())
    assert json.loads((run_dir / "metrics.json").read_text()) == every_step


def test_a_run_that_takes_its_planned_steps_says_nothing_about_stopping(make_config, tmp_path):
    fit_run(make_config(*TINY, *QUIET))
    assert "stopped_by" not in json.loads((tmp_path / "run/run.json").read_text())


DIVERGE = [*TINY, *QUIET, "trainer.max_steps=50", "optimizer.lr=10"]


def test_an_anomaly_found_by_detect_anomaly_is_a_divergence(make_config):
    """The loss went inf at step 3 and its gradients NaN at step 4, inside step 4's backward: the line names
    the first bad loss, as the run without anomaly detection does."""
    with pytest.raises(Diverged) as plain:
        fit_run(make_config(*DIVERGE, subdir="plain"))
    with pytest.raises(Diverged) as anomaly:
        fit_run(make_config(*DIVERGE, "trainer.detect_anomaly=true"))
    assert str(anomaly.value) == str(plain.value)
    assert str(plain.value).startswith("training diverged: train/loss is inf at step 3 of 50; try a smaller "
                                       "optimizer.lr (this run: 10; ")


@pytest.mark.slow  # trains in this process
def test_an_anomaly_ends_the_command_in_the_divergence_line_with_exit_3_and_failure_txt(cli, tmp_path):
    code, out, err = cli(*DIVERGE, "trainer.detect_anomaly=true")
    assert code == 3, err[-3000:]
    assert "Traceback" not in err and "Error detected in" not in err
    last_line = err.strip().splitlines()[-1]
    assert last_line.startswith("error: training diverged: train/loss is inf at step 3 of 50; ")
    (run_dir,) = (tmp_path / "outputs/runs").iterdir()
    assert (run_dir / "failure.txt").read_text() == f"Diverged: {last_line.removeprefix('error: ')}\n"


class PoisonedBatches:
    """A SyntheticRegression's fixed batch every step, but with NaN in one input at step `step`."""

    def __init__(self, datamodule: SyntheticRegression, step: int):
        self.batch, self.length, self.step = datamodule.train_batch, datamodule.hparams.steps, step

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        x, y = self.batch
        bad = x.clone()
        bad[0, 0] = torch.nan
        return iter([(bad, y) if i + 1 == self.step else (x, y) for i in range(self.length)])


@pytest.mark.parametrize("step", [1, 5])  # a logging step, and one that is read at step 10
def test_a_batch_that_is_not_finite_is_blamed_on_the_data_not_the_lr(make_config, monkeypatch, step):
    monkeypatch.setattr(SyntheticRegression, "train_dataloader", lambda self: PoisonedBatches(self, step))
    with pytest.raises(Diverged) as info:
        fit_run(make_config(*SMALL, *QUIET, "trainer.max_steps=20"))
    message = str(info.value)
    assert f"train/loss is nan at step {step} of 20; the batch of step {step} holds NaN or inf (inputs or " \
           "targets): the data are not finite; no checkpoint was saved" in message
    assert "optimizer.lr" not in message


def test_non_finite_data_values_are_blamed_on_the_data(make_config):
    with pytest.raises(Diverged, match=r"train/loss is (inf|nan) at step 1 of 6; the batch of step 1 holds NaN or "
                                       r"inf \(inputs or targets\): the data are not finite; "):
        fit_run(make_config(*TINY, *QUIET, "data=teacher", "data.noise_std=inf"))


def test_a_resumed_run_that_diverges_names_the_file_it_resumed_not_the_path_its_state_records(tmp_path):
    first = tmp_path / "first"
    fit_run(compose_config(first, [*TINY, *QUIET]))
    gift = tmp_path / "gift.ckpt"  # the same checkpoint, handed on under another name
    shutil.copy(first / "checkpoints/final.ckpt", gift)
    assert torch.load(gift, weights_only=True)["callbacks"]  # its ModelCheckpoint state names first's file
    with pytest.raises(Diverged) as info:
        fit_run(compose_config(tmp_path / "second", [*DIVERGE, f"ckpt_path={gift}"]))
    assert str(info.value).endswith(f"; last finite checkpoint: {gift}"), str(info.value)


def test_an_anomaly_in_the_backward_of_a_non_finite_batch_names_that_step_and_the_data(make_config, monkeypatch):
    """A NaN input at step 5 (not a logging step): anomaly detection stops the run inside step 5's backward,
    before its loss is read; the line names the gradient, the step and the data."""
    monkeypatch.setattr(SyntheticRegression, "train_dataloader", lambda self: PoisonedBatches(self, 5))
    with pytest.raises(Diverged, match=r"^training diverged: a gradient is NaN \(\w+Backward\d*, found by "
                                       r"trainer\.detect_anomaly\) at step 5 of 20; the batch of step 5 holds NaN or "
                                       r"inf \(inputs or targets\): the data are not finite; no checkpoint was saved$"):
        fit_run(make_config(*SMALL, *QUIET, "trainer.max_steps=20", "trainer.detect_anomaly=true"))


@pytest.mark.parametrize("full_error", ["0", "1"])
def test_torchs_forward_trace_of_an_anomaly_shows_only_under_hydra_full_error(make_config, monkeypatch, full_error):
    monkeypatch.setattr(SyntheticRegression, "train_dataloader", lambda self: PoisonedBatches(self, 1))
    monkeypatch.delenv(exits.USER_FULL_ERROR, raising=False)
    monkeypatch.setenv("HYDRA_FULL_ERROR", full_error)
    with warnings.catch_warnings(record=True) as caught, \
            pytest.raises(Diverged, match="found by trainer.detect_anomaly"):
        warnings.simplefilter("always")
        fit_run(make_config(*SMALL, *QUIET, "trainer.max_steps=20", "trainer.detect_anomaly=true"))
    traces = [w for w in caught if str(w.message).startswith("Error detected in ")]
    assert len(traces) == (full_error == "1")
