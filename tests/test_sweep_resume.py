"""Sweeps that survive being stopped: Optuna studies in a real SQLite file, continued and shared by
real processes, and grid sweeps re-run into their own dir that run only the jobs not finished."""

import csv
import json
import re
import shutil
import subprocess
import sys

import optuna
import pytest
import yaml

from primer.sweeps.report import job_dirs
from tests.conftest import TINY

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
SEARCH = ["hparams_search=optuna", "hydra.sweeper.n_trials=3", *TINY[:3], *QUIET]  # the search draws hidden_dim


def start(cwd, *args):
    return subprocess.Popen([sys.executable, "-m", "primer.train", "-m", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, allowed=(0,)):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode in allowed, err[-3000:]
    return out + err


def the_study(storage):
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def searched(trial):
    return tuple(sorted(trial.params.items()))


@pytest.mark.slow
def test_the_same_search_again_adds_its_trials_to_the_stored_study(tmp_path):
    # exit 4: a drawn lr may diverge; the trial is then recorded as failed, and still counted
    first = finish(start(tmp_path, *SEARCH), allowed=(0, 4))
    assert "search 1 on it, sampler seed 0" in first
    second = finish(start(tmp_path, *SEARCH), allowed=(0, 4))
    assert "search 2 on it, sampler seed 1" in second

    study = the_study(f"sqlite:///{tmp_path}/outputs/optuna.db")  # the default storage, under outputs/
    assert [t.number for t in study.trials] == list(range(6))
    assert all(t.state.is_finished() for t in study.trials)
    assert len({searched(t) for t in study.trials}) == 6  # the second search drew new parameters
    completed = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    (_, second_dir) = sorted((tmp_path / "outputs" / "multirun").iterdir())
    best = yaml.safe_load((second_dir / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(completed))  # over the whole study, not this search's 3


@pytest.mark.slow
def test_searches_started_together_share_one_study(tmp_path):
    storage = f"sqlite:///{tmp_path}/shared/studies.db"  # a folder that does not exist yet
    procs = [start(tmp_path, *SEARCH, f"hydra.sweeper.storage={storage}") for _ in range(2)]
    outputs = [finish(proc, allowed=(0, 4)) for proc in procs]
    assert [len(re.findall(r"^#\d+ ", o, re.MULTILINE)) for o in outputs] == [3, 3]  # a line per trial as it ends

    study = the_study(storage)
    assert sorted(t.number for t in study.trials) == list(range(6))
    assert all(t.state.is_finished() for t in study.trials)
    assert len({searched(t) for t in study.trials}) == 6  # two seeds: no trial drawn twice
    assert study.user_attrs["primer_sweeps"] == 2


GRID = ["optimizer.lr=1e-4,2e-4,3e-4", *TINY, *QUIET]


def results(job):
    """What a finished job wrote, with each file's bytes and modification time."""
    files = [job / "metrics.json", *(job / "checkpoints").iterdir(), *job.glob("events.out.tfevents.*")]
    return {f.name: (f.read_bytes(), f.stat().st_mtime_ns) for f in files if f.is_file()}


def summary_rows(sweep_dir):
    with open(sweep_dir / "summary.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_a_grid_sweep_run_again_into_its_dir_runs_only_the_missing_job(tmp_path):
    sweep = tmp_path / "sweep"
    finish(start(tmp_path, *GRID, f"hydra.sweep.dir={sweep}"))
    first, middle, last = job_dirs(sweep)
    kept = {job: results(job) for job in (first, last)}
    shutil.rmtree(middle)

    out = finish(start(tmp_path, *GRID, f"hydra.sweep.dir={sweep}"))
    skipped = [line for line in out.splitlines() if line.startswith("skipped ")]
    assert skipped == [f"skipped {job.name}: finished earlier with this config; its results are kept"
                       for job in (first, last)]
    assert {job: results(job) for job in (first, last)} == kept  # same bytes, same mtimes
    assert re.findall(r"^#(\d+) ", out, re.MULTILINE) == ["1"] and (middle / "metrics.json").is_file()  # only it ran
    rows = summary_rows(sweep)
    assert [r["job"] for r in rows] == [first.name, middle.name, last.name]
    assert all(r["status"] == "ok" and float(r["wall_time_s"]) > 0 for r in rows)
    for row, job in zip(rows, (first, middle, last)):
        assert float(row["val/loss"]) == pytest.approx(json.loads((job / "metrics.json").read_text())["val/loss"])


@pytest.mark.slow
def test_a_job_whose_config_changed_runs_again(tmp_path):
    sweep = tmp_path / "sweep"
    # job dirs named without the lr, so that both sweeps write into the same two dirs
    same_dirs = ["hydra.job.config.override_dirname.exclude_keys=[ckpt_path,optimizer.lr]", f"hydra.sweep.dir={sweep}"]
    finish(start(tmp_path, "optimizer.lr=1e-4,2e-4", *TINY, *QUIET, *same_dirs))
    first, second = job_dirs(sweep)
    before = {job.name: results(job) for job in (first, second)}

    out = finish(start(tmp_path, "optimizer.lr=1e-4,3e-4", *TINY, *QUIET, *same_dirs))
    assert job_dirs(sweep) == [first, second]
    assert [line for line in out.splitlines() if line.startswith("skipped ")] == [
        f"skipped {first.name}: finished earlier with this config; its results are kept"]
    assert results(first) == before[first.name]
    assert results(second)["metrics.json"] != before[second.name]["metrics.json"]
    record = json.loads((second / "finished.json").read_text())
    assert record["config"]["optimizer"]["lr"] == 3e-4
    assert len(list(second.glob("events.out.tfevents.*"))) == 1  # the old run's curve is gone
    assert yaml.safe_load((second / "hparams.yaml").read_text())["optimizer.lr"] == 3e-4  # not the old run's
    assert "held an earlier run" not in (second / "train.log").read_text()  # cleared before the job started


@pytest.mark.slow
def test_a_grid_run_again_into_the_dir_of_a_larger_one_counts_only_its_own_jobs(tmp_path):
    """Was '1 of 3 jobs failed', exit 4: the earlier grid's third job, failed, was counted."""
    sweep = tmp_path / "sweep"
    finish(start(tmp_path, "optimizer.lr=1e-4,2e-4,3e-4", *TINY, *QUIET, f"hydra.sweep.dir={sweep}"))
    stale = job_dirs(sweep)[2]
    (stale / "metrics.json").unlink()  # as if it had failed
    proc = start(tmp_path, "optimizer.lr=1e-4,2e-4", *TINY, *QUIET, f"hydra.sweep.dir={sweep}")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert [r["job"] for r in summary_rows(sweep)] == [d.name for d in job_dirs(sweep)] and len(job_dirs(sweep)) == 2
    assert stale.is_dir() and stale not in job_dirs(sweep)
