"""Every ending reports the step it ended on, and why: a run stopped between logging steps (max_time, early
stopping, a callback) shows that step's values in the console, metrics.json and TensorBoard, and says what
stopped it; an anomaly found by trainer.detect_anomaly is a divergence; the divergence line blames the data
when they are not finite, and names only a checkpoint this run wrote or resumed from."""

import json
import re
import shutil

import pytest
import torch

from primer.cli.train import train
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
                  "+callbacks.clock.step=7"], 7, r"time limit 0:10:00 reached \(trainer\.max_time or a Timer callback\)"),
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
    train(make_config(*run))
    out = capsys.readouterr().out
    run_dir = tmp_path / "run"
    assert_final_step_everywhere(run_dir, out, step)
    stopped = json.loads((run_dir / "run.json").read_text())["stopped_by"]
    assert (found := re.fullmatch(reason, stopped)), stopped
    if "value" in found.groupdict():
        assert found["value"] == f"{json.loads((run_dir / 'metrics.json').read_text())['val/loss']:.4g}"
    block = out[out.rindex("done: "):].splitlines()
    assert block[1] == f"  stopped by  {stopped}"

    # the values shown are those of that step: a run that logs every step shows the same
    train(make_config(*run, "trainer.log_every_n_steps=1", subdir="every_step"))
    every_step = json.loads((tmp_path / "every_step/metrics.json").read_text())
    assert json.loads((run_dir / "metrics.json").read_text()) == every_step


def test_a_run_that_takes_its_planned_steps_says_nothing_about_stopping(make_config, tmp_path):
    train(make_config(*TINY, *QUIET))
    assert "stopped_by" not in json.loads((tmp_path / "run/run.json").read_text())
