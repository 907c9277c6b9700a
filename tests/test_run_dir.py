"""One owner of a run dir's life (primer.run.run_dir): claimed before anything is written, never written through
a link, one run at a time, kept once training has stepped, and otherwise given back byte for byte."""

import fcntl
import json
import os
import signal
import subprocess
import threading

import pytest

from primer.exits import BadConfig
from primer.run import run_dir
from tests.callbacks import SETTING_UP
from tests.conftest import QUIET, TINY, run_cli, start_cli

AGAIN = [*TINY, *QUIET, "hydra.run.dir=outputs/run"]


def contents(path) -> dict:
    """Every file and link under `path`, by relative name: bytes, or where a link points."""
    found = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(root, name)
            key = os.path.relpath(full, path)
            if os.path.islink(full):
                found[key] = ("link", os.readlink(full))
            elif os.path.isfile(full):
                with open(full, "rb") as f:
                    found[key] = f.read()
    return found


# (the link planted in a used run dir, where it points); each is a file primer or Hydra writes there
LINKS = [("run.json", "nowhere/run.json"), ("hparams.yaml", "nowhere/hparams.yaml"),
         (".hydra/config.yaml", "target.txt"), (".hydra/overrides.yaml", "target.txt"), ("train.log", "target.txt"),
         ("checkpoints", "target_dir")]


@pytest.mark.parametrize(("name", "points_to"), LINKS, ids=[name for name, _ in LINKS])
def test_a_link_in_a_used_run_dir_is_refused_in_one_line_and_nothing_is_written_through_it(cli, tmp_path, name,
                                                                                          points_to):
    (tmp_path / "target.txt").write_text("someone else's file\n")
    (tmp_path / "target_dir").mkdir()
    (tmp_path / "target_dir/final.ckpt").write_bytes(b"someone else's checkpoint")
    run = tmp_path / "outputs/run"
    (run / ".hydra").mkdir(parents=True)
    (run / "metrics.json").write_text("{}\n")
    (run / name).symlink_to(tmp_path / points_to)
    before = contents(tmp_path)

    code, out, err = cli(*AGAIN)

    assert code == 2
    assert err == (f"error: hydra.run.dir=outputs/run: {run / name} is a symbolic link; primer never writes through "
                   "a link in a run or sweep dir: remove it, or choose another dir\n")
    assert contents(tmp_path) == before and not (tmp_path / "nowhere").exists()


def test_a_link_in_a_sweep_dir_is_refused_before_any_job_runs(cli, tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (sweep / "0_seed=1").symlink_to(tmp_path / "elsewhere")
    code, out, err = cli("-m", *TINY, *QUIET, "seed=1,2", "hydra.sweep.dir=sweep")
    assert code == 2
    assert err.startswith(f"error: hydra.sweep.dir=sweep: {sweep / '0_seed=1'} is a symbolic link; ")  # absolute
    assert err.count("\n") == 1 and os.listdir(sweep) == ["0_seed=1"] and os.listdir(tmp_path / "elsewhere") == []


def test_a_run_into_a_dir_another_run_is_writing_into_is_refused(cli, tmp_path):
    run = tmp_path / "outputs/run"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text('{"train/loss": 1.0}\n')
    held = os.open(run, os.O_RDONLY)  # the lock a running primer.train holds on its run dir
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        code, out, err = cli(*AGAIN)
    finally:
        os.close(held)
    assert code == 2
    assert err == (f"error: hydra.run.dir=outputs/run: another run or sweep is writing into {run} now; wait for it "
                   "to end, or choose another dir\n")
    assert contents(run) == {"metrics.json": b'{"train/loss": 1.0}\n'}


def test_a_sweep_into_a_sweep_dir_another_sweep_is_writing_into_is_refused(cli, tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    held = os.open(sweep, os.O_RDONLY)  # the lock a running sweep holds on its dir
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        code, out, err = cli("-m", *TINY, *QUIET, "seed=1,2", "hydra.sweep.dir=sweep")
    finally:
        os.close(held)
    assert code == 2 and err.startswith(f"error: hydra.sweep.dir=sweep: another run or sweep is writing into {sweep} ")
    assert os.listdir(sweep) == []


def test_a_claim_given_back_leaves_a_used_dir_byte_for_byte(tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra/config.yaml").write_text("seed: 0\n")
    (run / "metrics.json").write_text("{}\n")
    (run / "events.out.tfevents.1.host.1.0").write_bytes(b"\x00curve")
    (run / "checkpoints").mkdir()
    (run / "checkpoints/final.ckpt").write_bytes(b"weights")
    before = contents(run)

    run_dir.claim(run, "hydra.run.dir=run", hydra_files=(".hydra", "train.log"))
    assert sorted(os.listdir(run)) == [".earlier-run", "checkpoints"]  # this run writes into a dir of its own
    (run / ".hydra").mkdir()
    (run / ".hydra/config.yaml").write_text("seed: 1\n")
    (run / "train.log").write_text("set-up\n")
    (run / "checkpoints/interrupted.ckpt").write_bytes(b"new")
    run_dir.give_back()

    assert contents(run) == before


def test_a_resume_into_its_own_dir_keeps_its_curve_and_log_in_place_and_cuts_the_log_back_on_a_give_back(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.log").write_text("the first run\n")
    (run / "events.out.tfevents.1.host.1.0").write_bytes(b"\x00curve")
    (run / "run.json").write_text("{}\n")
    run_dir.claim(run, "hydra.run.dir=run", resumes_here=True, hydra_files=(".hydra", "train.log"))
    assert sorted(os.listdir(run)) == [".earlier-run", "events.out.tfevents.1.host.1.0", "train.log"]
    with open(run / "train.log", "a") as log:
        log.write("the resume's set-up\n")
    run_dir.give_back()
    assert contents(run) == {"train.log": b"the first run\n", "events.out.tfevents.1.host.1.0": b"\x00curve",
                             "run.json": b"{}\n"}


def test_a_claim_given_back_removes_the_dirs_it_made_and_nothing_above(tmp_path):
    run_dir.claim(tmp_path / "outputs/runs/run", "hydra.run.dir=outputs/runs/run")
    (tmp_path / "outputs/runs/run/train.log").write_text("set-up\n")
    run_dir.give_back()
    assert os.listdir(tmp_path) == []


def test_once_training_has_stepped_the_earlier_run_is_gone_and_the_dir_is_kept(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}\n")
    run_dir.claim(run, "hydra.run.dir=run")
    (run / "run.json").write_text('{"steps": 1}\n')
    run_dir.training_started()
    run_dir.give_back()  # an ending after the first step: nothing is given back
    assert contents(run) == {"run.json": b'{"steps": 1}\n'}


def test_a_run_whose_files_go_elsewhere_replaces_the_earlier_run_in_its_hydra_dir_too(tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra/config.yaml").write_text("seed: 0\n")
    (run / "metrics.json").write_text("{}\n")
    run_dir.claim(run, "hydra.run.dir=run", hydra_files=(".hydra", "train.log"))
    (run / ".hydra").mkdir()
    (run / ".hydra/config.yaml").write_text("seed: 1\n")
    run_dir.claim(tmp_path / "elsewhere", "paths.output_dir=elsewhere")  # primer.cli.train, paths.output_dir=X
    run_dir.training_started()
    run_dir.release()
    assert contents(run) == {".hydra/config.yaml": b"seed: 1\n"}  # no .earlier-run/ for a later run to put back


def test_a_dir_whose_earlier_run_was_moved_aside_by_a_killed_set_up_gets_it_back_at_the_next_claim(tmp_path):
    run = tmp_path / "run"
    (run / ".earlier-run").mkdir(parents=True)  # what kill -9 during a set-up leaves
    (run / ".earlier-run/metrics.json").write_text('{"train/loss": 1.0}\n')
    (run / "metrics.json").write_text('{"half": "written"}\n')
    run_dir.claim(run, "hydra.run.dir=run")
    run_dir.give_back()
    assert contents(run) == {"metrics.json": b'{"train/loss": 1.0}\n'}


def claimed_in_another_process(claim, path) -> bool:
    """Whether `claim(path, ...)` succeeds in a process of its own (forked: it shares no lock with this one)."""
    if (child := os.fork()) == 0:
        run_dir.release()  # forgets the parent's claim; the parent's lock stays (its own descriptor is open)
        try:
            claim(path, "hydra.run.dir=run")
            os._exit(0)
        except BadConfig:
            os._exit(3)
    return os.waitpid(child, 0)[1] == 0


def test_a_claim_in_another_process_is_refused_until_it_is_released(tmp_path):
    run = tmp_path / "run"
    run_dir.claim(run, "hydra.run.dir=run")
    assert not claimed_in_another_process(run_dir.claim, run)
    run_dir.release()
    assert claimed_in_another_process(run_dir.claim, run)


def test_a_new_sweep_dir_is_locked_once_hydra_has_made_it_as_its_first_job_is_claimed(tmp_path):
    sweep = tmp_path / "sweep"
    run_dir.claim_sweep(sweep, "hydra.sweep.dir=sweep")
    assert not sweep.exists()  # a sweep refused before its first job leaves no dir
    (sweep / "0_seed=1").mkdir(parents=True)  # Hydra makes the sweep dir and the job's
    run_dir.claim(sweep / "0_seed=1", "paths.output_dir=sweep/0_seed=1")
    run_dir.release()  # the job is over; the sweep goes on
    assert not claimed_in_another_process(run_dir.claim_sweep, sweep)


def test_a_sweep_that_failed_before_its_first_job_leaves_its_dir_unlocked_by_a_later_run(tmp_path):
    sweep = tmp_path / "sweep"
    run_dir.claim_sweep(sweep, "hydra.sweep.dir=sweep")
    sweep.mkdir()  # Hydra made it; the search failed before any job started
    run_dir.claim(tmp_path / "run", "output_dir=run")  # a later primer.fit in this process (a notebook)
    run_dir.release()
    assert claimed_in_another_process(run_dir.claim_sweep, sweep)


@pytest.mark.slow  # trains in this process
def test_a_set_up_error_into_a_used_dir_leaves_it_byte_for_byte_hydra_files_and_log_included(cli, tmp_path):
    run = tmp_path / "outputs/run"
    assert cli(*AGAIN)[0] == 0
    assert cli(*AGAIN, "optimizer.lr=0.0002")[0] == 0  # a used dir, whose train.log says so
    before = contents(run)
    assert before["train.log"] and b"optimizer.lr=0.0002" in before[".hydra/overrides.yaml"]

    code, out, err = cli(*AGAIN, "data.batch_size=100000000000")  # fails as the data are made, after Hydra wrote

    assert code == 2 and err.startswith("error: trainer.fit: RuntimeError: ") and err.count("\n") == 1
    assert contents(run) == before


@pytest.mark.slow  # trains in this process
def test_the_python_api_gives_a_used_dir_back_as_it_was_after_a_set_up_error(tmp_path):
    from primer import fit

    run = tmp_path / "run"
    fit([*TINY, *QUIET], output_dir=run)
    before = contents(run)
    with pytest.raises(BadConfig, match="trainer.fit: RuntimeError: "):
        fit([*TINY, *QUIET, "data.batch_size=100000000000"], output_dir=run)
    assert contents(run) == before  # .hydra/config.yaml included


@pytest.mark.slow  # trains in this process
def test_a_run_that_diverges_at_its_first_step_keeps_its_dir_and_says_why_there(cli, tmp_path):
    code, out, err = cli(*AGAIN, "data=teacher", "data.noise_std=inf")  # targets of inf: the first loss is inf
    assert code == 3 and "at step 1 of 6" in err
    run = tmp_path / "outputs/run"
    assert (run / "failure.txt").read_text().startswith("Diverged: ")
    assert json.loads((run / "run.json").read_text())["steps"] == 1


@pytest.mark.slow
def test_a_second_run_started_into_the_same_dir_is_refused_not_mixed(tmp_path):
    first = start_cli(*AGAIN, "+callbacks.hold._target_=tests.callbacks.HoldInSetup", cwd=tmp_path,
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watchdog = threading.Timer(300, first.kill)  # bounds a run that hangs before the marker; not a wait
    watchdog.start()
    try:
        assert first.stderr.readline() == f"{SETTING_UP}\n"  # blocks until the first run holds its dir, in set-up
        second = run_cli(*AGAIN, "seed=1", cwd=tmp_path)
        first.send_signal(signal.SIGINT)
        first_err = first.stderr.read()
        first.wait()
    finally:
        watchdog.cancel()
    run = tmp_path / "outputs/run"
    assert second.returncode == 2
    assert second.stderr == (f"error: hydra.run.dir=outputs/run: another run or sweep is writing into {run} now; "
                             "wait for it to end, or choose another dir\n")
    assert first.returncode == 130, first_err[-2000:]
    assert not (tmp_path / "outputs").exists()  # the first run never stepped: its dir is given back


def test_a_run_dir_that_cannot_be_made_is_the_machines_fault_in_one_line_not_bad_input(cli, tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    code, out, err = cli(*AGAIN)
    assert code == 5  # exits.ENVIRONMENT
    assert err == f"error: {os.strerror(errno.EROFS)}: {tmp_path / 'outputs/run'}\n"
