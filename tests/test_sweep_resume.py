"""Sweeps that survive being stopped: Optuna studies in a real SQLite file, continued and shared by
real processes, and grid sweeps re-run into their own dir that run only the jobs not finished."""

import csv
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys

import optuna
import pytest
import yaml

from primer import exits
from primer.sweeps.report import job_dirs
from tests.callbacks import REACHED
from tests.conftest import TINY, cli_env

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


HOLD_AT = 4  # tests.callbacks.HoldAtStep holds job 1 (8 steps) there; jobs 0 and 2 (3 and 2 steps) never reach it
INTERRUPTIBLE = ["trainer.max_steps=3,8,2", "+callbacks.hold._target_=tests.callbacks.HoldAtStep",
                 f"+callbacks.hold.step={HOLD_AT}", *TINY[1:], *QUIET]


def interrupt_sweep(tmp_path, signum, extra=()):
    """Starts a 3-job sweep into the default dir, sends `signum` once job 1 holds at step HOLD_AT, to every
    process of the sweep, as a terminal's Ctrl-C does; its output."""
    run = subprocess.Popen([sys.executable, "-m", "primer.train", "-m", *INTERRUPTIBLE, *extra], cwd=tmp_path,
                           env=cli_env(), stdout=open(tmp_path / "stdout.txt", "w"), stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    before = []
    for line in run.stderr:  # blocks until the next line, or the end
        before.append(line)
        if line.startswith(REACHED):
            os.killpg(run.pid, signum)
            break
    err = "".join(before) + run.stderr.read()
    run.wait(timeout=300)
    assert run.returncode == 128 + signum, err[-3000:]
    return (tmp_path / "stdout.txt").read_text(), err


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_sweep_writes_its_summary_and_the_command_that_continues_it(tmp_path, signum):
    out, err = interrupt_sweep(tmp_path, signum)
    (sweep_dir,) = (tmp_path / "outputs" / "multirun").iterdir()  # the default, time-stamped dir
    assert "Traceback" not in err
    rows = summary_rows(sweep_dir)
    assert [(r["job"], r["status"]) for r in rows] == [
        ("0_max_steps3", "ok"), ("1_max_steps8", "interrupted"), ("2", "not started")]
    name = signal.Signals(signum).name
    assert rows[1]["reason"].startswith(f"{name} at step {HOLD_AT} of 8: saved ")
    assert (sweep_dir / "1_max_steps8" / "interrupted.txt").is_file()
    assert not (sweep_dir / "1_max_steps8" / "failure.txt").exists()  # interrupted, not failed
    assert "| 2 | `trainer.max_steps=2 " in out and "| not started |" in out  # the summary printed
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"interrupted: {exits.signal_name(signum)} stopped the sweep in job 1: {name} at step "
                           f"{HOLD_AT} of 8: saved ")
    assert "1 of 3 jobs finished" in last and "resume with" not in last
    command = last.partition("continue the sweep with: ")[2]
    argv = shlex.split(command)
    assert argv[:4] == ["python", "-m", "primer.train", "-m"]
    assert argv[-1] == f"hydra.sweep.dir={sweep_dir.relative_to(tmp_path)}"
    assert argv[4:-1] == INTERRUPTIBLE

    job0 = {f: (sweep_dir / "0_max_steps3" / f).read_bytes() for f in ("run.json", "metrics.json", "finished.json")}
    continued = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, env=cli_env(), capture_output=True,
                               text=True, timeout=600)
    assert continued.returncode == 0, continued.stderr[-3000:]
    assert REACHED not in continued.stderr  # job 1 went on from step HOLD_AT, past the hold
    assert sorted(d.name for d in job_dirs(sweep_dir)) == ["0_max_steps3", "1_max_steps8", "2_max_steps2"]
    assert [r["status"] for r in summary_rows(sweep_dir)] == ["ok", "ok", "ok"]
    assert {f: (sweep_dir / "0_max_steps3" / f).read_bytes() for f in job0} == job0  # skipped, not run again
    assert "skipped 0_max_steps3" in continued.stderr + continued.stdout
    resumed = sweep_dir / "1_max_steps8"
    assert f"done: 8 steps (resumed at step {HOLD_AT})" in (resumed / "train.log").read_text()
    assert json.loads((resumed / "run.json").read_text())["steps"] == 8
    assert not (resumed / "interrupted.txt").exists()


@pytest.mark.slow
def test_an_interrupted_joblib_sweep_lists_its_stopped_job_as_interrupted_and_continues(tmp_path):
    """Under joblib the launcher ends its worker as the signal reaches it: the job saves its checkpoint or is
    ended first (a race), and either way it is listed as interrupted, not failed, and the sweep continues."""
    # one worker: job 0 has finished when job 1 holds; held once: a job 1 that starts afresh goes on
    joblib = ["+callbacks.hold.once=held-once", "hydra/launcher=joblib", "hydra.launcher.n_jobs=1"]
    _, err = interrupt_sweep(tmp_path, signal.SIGINT, joblib)
    (sweep_dir,) = (tmp_path / "outputs" / "multirun").iterdir()
    assert [(r["job"], r["status"]) for r in summary_rows(sweep_dir)] == [
        ("0_max_steps3", "ok"), ("1_max_steps8", "interrupted"), ("2", "not started")]
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: Ctrl-C stopped the sweep in job 1: ") and "1 of 3 jobs finished" in last
    argv = shlex.split(last.partition("continue the sweep with: ")[2])
    assert argv[4:-1] == [*INTERRUPTIBLE, *joblib] and argv[-1] == f"hydra.sweep.dir={sweep_dir.relative_to(tmp_path)}"
    job0 = (sweep_dir / "0_max_steps3" / "run.json").read_bytes()
    continued = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, env=cli_env(), capture_output=True,
                               text=True, timeout=600)
    assert continued.returncode == 0, continued.stderr[-3000:]
    assert [r["status"] for r in summary_rows(sweep_dir)] == ["ok", "ok", "ok"]
    assert (sweep_dir / "0_max_steps3" / "run.json").read_bytes() == job0


@pytest.mark.slow  # sweeps in this process
def test_a_job_stopped_by_ctrl_c_after_its_training_ended_is_skipped_when_the_sweep_continues(cli, tmp_path,
                                                                                            monkeypatch):
    """Was: no finished.json, so the continue command trained job 0 again."""
    import primer.run.console

    closing_block, calls = primer.run.console.final_block, []

    def ctrl_c_in_job_0(*args):  # as job 0 writes its closing block to its log
        calls.append(args)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Python runs the handler before the next line
            pytest.fail("Ctrl-C did not stop the sweep")
        return closing_block(*args)

    monkeypatch.setattr(primer.run.console, "final_block", ctrl_c_in_job_0)
    code, _, err = cli("-m", "optimizer.lr=1e-4,2e-4", *TINY, *QUIET, "hydra.sweep.dir=sweep")
    assert code == 130, err[-3000:]
    first, second = job_dirs(tmp_path / "sweep")[0], tmp_path / "sweep" / "1_lr0.0002"
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: Ctrl-C stopped the sweep ") and "1 of 2 jobs finished" in last
    assert not second.exists()
    kept = results(first)

    argv = shlex.split(last.partition("continue the sweep with: ")[2])
    assert argv[:4] == ["python", "-m", "primer.train", "-m"]
    code, out, err = cli(*argv[3:])
    assert code == 0, err[-3000:]
    assert f"skipped {first.name}: finished earlier with this config; its results are kept" in out + err
    assert results(first) == kept  # not trained again
    assert re.findall(r"^#(\d+) ", out + err, re.MULTILINE) == ["1"]  # only job 1 ran
    assert [(r["job"], r["status"]) for r in summary_rows(tmp_path / "sweep")] == [
        (first.name, "ok"), (second.name, "ok")]
