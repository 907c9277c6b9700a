"""A sweep's summary and exit code come from metrics.json and run.json, which every job writes, so
they are the same under every logger and callbacks choice, the template's `[]` spelling included."""

import csv
import json
from pathlib import Path

import pytest

from primer import exits
from primer.sweeps import report
from primer.cli.train import fit_run
from tests.conftest import QUIET, TINY

DIVERGING, FINISHING = "optimizer.lr=1e-4,10", "optimizer.lr=1e-4,1e-3"


def test_an_empty_logger_and_callbacks_list_mean_none(make_config, tmp_path):
    """lightning-hydra-template's `logger=[]` composes no `logger` key at all (`logger=none` an empty one)."""
    metrics, _ = fit_run(make_config(*TINY, *QUIET, "logger=[]", "callbacks=[]"))
    run_dir = tmp_path / "run"
    assert json.loads((run_dir / "metrics.json").read_text())["train/loss"] == pytest.approx(metrics["train/loss"])
    assert not list(run_dir.rglob("events.out.tfevents.*")) and not (run_dir / "checkpoints" / "final.ckpt").exists()


@pytest.mark.slow  # trains in this process
@pytest.mark.parametrize("logger, callbacks, lrs", [
    ("none", "default", DIVERGING),  # the command
    ("[]", "[]", DIVERGING),
    ("csv", "none", DIVERGING),
    ("csv", "[]", FINISHING),
    ("tensorboard", "none", FINISHING),
    ("mlflow", "none", DIVERGING),  # the trackers: tests/test_trackers.py reads what they hold
    ("wandb", "none", DIVERGING),
])
def test_sweep_summary_and_exit_code_do_not_depend_on_the_logger(cli, tmp_path, start_store, logger, callbacks, lrs):
    if logger == "mlflow":
        start_store(tmp_path)
    code, out, err = cli("-m", f"logger={logger}", f"callbacks={callbacks}", lrs, *TINY, *QUIET,
                         "hydra.sweep.dir=sweep")
    sweep = Path("sweep")  # as the sweep names it: relative to where it ran (tmp_path)
    diverging = lrs == DIVERGING
    assert "SweepSummary" not in err  # Hydra's warning where a callback raised
    assert code == (exits.SWEEP_FAILED if diverging else 0), err[-3000:]
    if diverging:
        assert err.rstrip().splitlines()[-1] == f"error: 1 of 2 jobs failed; see {sweep / 'summary.md'}"

    with open(sweep / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok", "failed" if diverging else "ok"]
    assert rows[0]["steps"] == "6" and float(rows[0]["wall_time_s"]) > 0  # from run.json, without a checkpoint
    finished = json.loads((sweep / rows[0]["job"] / "metrics.json").read_text())
    assert float(rows[0]["train/loss"]) == pytest.approx(finished["train/loss"])
    assert (sweep / "summary.md").read_text().strip() in out

    tensorboard = logger == "tensorboard"
    assert (sweep / report.PLOT).is_file() == tensorboard
    assert (f"tensorboard --logdir {sweep}" in out) == tensorboard  # no dashboard to point at otherwise
    assert (report.NO_CURVES in out) != tensorboard
