"""Environment faults (a full disk, a read-only dir, a storage that failed) end in one line naming the cause
and the path, exit 5, and lose nothing written before; damaged files primer reads back are named, never a
traceback. The full disk is simulated in this process (os.fsync raising ENOSPC, as write_atomic's last
step before the rename); the slow test fills a real, small tmpfs where mounting one is permitted."""

import errno
import json
import logging
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser

import primer.eval as primer_eval
from primer import exits
from primer.run import guards
from primer.sweeps import report
from primer.sweeps.sweep_resume import finished_result
from tests.conftest import QUIET, TINY, compose_config, read_checkpoint, run_cli
from tests.test_checkpoint_safety import stored_as_primer_writes, write_checkpoint


def full_disk(monkeypatch, only=lambda path: True):
    """Every write_atomic whose file `only` accepts fails as on a full disk, at its fsync."""
    real_fsync, names = os.fsync, {}
    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):
        names[fd] = os.readlink(f"/proc/self/fd/{fd}")
        return real_fdopen(fd, *args, **kwargs)

    def fsync(fd):
        if only(names.get(fd, "")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fdopen", fdopen)
    monkeypatch.setattr(os, "fsync", fsync)


def test_an_os_error_of_the_machine_is_an_environment_fault_naming_its_path():
    try:
        try:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), "/data/run/metrics.json")
        except OSError as error:
            raise RuntimeError("wrapped") from error
    except RuntimeError as wrapped:
        fault = exits.environment_fault(wrapped)
    assert isinstance(fault, exits.EnvironmentFault) and fault.exit_code == 5
    assert str(fault) == "Read-only file system: /data/run/metrics.json"
    no_path = OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
    assert str(exits.environment_fault(no_path, where="/data/run")) == "Disk quota exceeded: a file in /data/run"
    assert exits.environment_fault(FileNotFoundError(errno.ENOENT, "No such file")) is None  # the input's fault
    assert exits.environment_fault(ValueError("x")) is None


def test_a_full_disk_at_the_end_of_a_run_ends_in_one_line_exit_5(cli, tmp_path, monkeypatch):
    full_disk(monkeypatch, only=lambda path: path.endswith(".tmp") and "metrics.json" in path)
    code, _, err = cli(*TINY, *QUIET, "hydra.run.dir=run")
    assert code == exits.ENVIRONMENT, err
    assert err.splitlines()[-1] == f"error: No space left on device: {tmp_path / 'run' / 'metrics.json'}", err
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "metrics.json").exists()
    assert not list((tmp_path / "run").glob(".*.tmp"))  # no half-written file left behind


def test_a_run_that_cannot_write_its_dir_before_training_ends_in_one_line(cli, tmp_path, monkeypatch):
    """An OSError without a path (TensorBoard's writer) still names the run dir; not 'bad input' (was exit 2)."""
    from torch.utils.tensorboard import writer

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(writer, "FileWriter", read_only)
    code, _, err = cli(*TINY, *QUIET, "hydra.run.dir=run")
    assert code == exits.ENVIRONMENT, err
    assert err.splitlines()[-1] == f"error: Read-only file system: a file in {tmp_path / 'run'}", err
    assert "Traceback" not in err


def test_a_sweep_job_that_hits_a_full_disk_is_a_failed_job_and_the_sweep_exits_5(cli, tmp_path, monkeypatch):
    full_disk(monkeypatch, only=lambda path: "_lr0.0002" in path and "metrics.json" in path)
    code, out, err = cli("-m", *TINY, *QUIET, "optimizer.lr=1e-4,2e-4", "hydra.sweep.dir=sweep")
    first, second = report.job_dirs(tmp_path / "sweep")
    reason = (second / "failure.txt").read_text()
    assert reason == f"EnvironmentFault: No space left on device: {second / 'metrics.json'}\n"
    assert code == exits.ENVIRONMENT, err
    assert err.splitlines()[-1] == (f"error: 1 of 2 jobs failed; see {Path('sweep', 'summary.md')}; job 1 for the "
                                    f"machine: No space left on device: {second / 'metrics.json'}")
    [line] = [line for line in out.splitlines() if line.startswith("#1 ")]
    assert line.endswith(f" optimizer.lr=0.0002  failed: EnvironmentFault: No space left on device: "
                         f"{second / 'metrics.json'}")
    assert (first / "metrics.json").is_file()


# --- the sweep summary reads what it can, names what it cannot, and counts only this sweep's jobs ---------

def fake_job(sweep: Path, name: str, metrics: str | None = '{"train/loss": 1.0, "val/loss": 2.0}',
             overrides: str = "- optimizer.lr=0.1\n") -> Path:
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(overrides)
    if metrics is not None:
        (job / "metrics.json").write_text(metrics)
    (job / "run.json").write_text('{"steps": 6, "wall_time_s": 0.5}')
    return job


def test_the_summary_names_a_file_it_cannot_read_and_counts_its_job_failed(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    fake_job(sweep, "0_ok")
    fake_job(sweep, "1_bad", metrics="{not json")
    (fake_job(sweep, "2_dir", metrics=None) / "metrics.json").mkdir()
    fake_job(sweep, "3_tag", overrides="- !!python/object/apply:os.system ['touch marker']\n")
    (sweep / "summary.md").write_text("an earlier summary\n")
    rows = report.summarize_sweep(sweep, at_sweep_end=False)
    out, err = capsys.readouterr()
    assert [r["status"] for r in rows] == ["ok", "failed", "failed", "failed"]
    assert rows[1]["reason"].startswith(f"cannot read {sweep / '1_bad' / 'metrics.json'}: JSONDecodeError: ")
    assert rows[2]["reason"].startswith(f"cannot read {sweep / '2_dir' / 'metrics.json'}: IsADirectoryError")
    assert rows[3]["reason"].startswith(f"cannot read {sweep / '3_tag' / '.hydra' / 'overrides.yaml'}: ")
    assert f":\n\n{(sweep / 'summary.md').read_text()}" in out  # written (not the earlier one) as printed
    assert not Path("marker").exists() and not (tmp_path / "marker").exists()
    assert [line.split(":")[0] for line in err.splitlines()] == ["note", "note", "note"]
    assert all(str(sweep / job) in err for job in ("1_bad", "2_dir", "3_tag"))
    ending = report.sweep_ending(rows, sweep / "summary.md")
    assert isinstance(ending, exits.SweepFailed) and str(ending).startswith("3 of 4 jobs failed")


def test_a_diverged_job_without_a_failure_record_fails_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    fake_job(sweep, "0_ok")
    fake_job(sweep, "1_nan", metrics='{"train/loss": "nan"}')
    rows = report.summarize_sweep(sweep, at_sweep_end=False)
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert isinstance(report.sweep_ending(rows, sweep / "summary.md"), exits.SweepFailed)


def test_the_report_of_a_run_dir_with_a_damaged_overrides_file_is_one_line_not_a_traceback(cli, tmp_path):
    run = fake_job(tmp_path, "run", overrides="- !!python/name:os.system ''\n")
    code, out, err = cli(str(run), main=lambda: report.main([str(run)]), prog="report")
    assert code == 0 and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(
        f"note: job run counts as failed: cannot read {run / '.hydra' / 'overrides.yaml'}: ConstructorError: "
        "could not determine a constructor for the tag 'tag:yaml.org,2002:python/name:os.system'"), err


def test_a_sweep_run_again_into_a_dir_of_a_larger_one_counts_only_its_own_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    stale = fake_job(sweep, "2_optimizer.lr=0.3")
    (sweep / "multirun.yaml").write_text("hydra: {}\n")  # this sweep begins
    ours = [fake_job(sweep, "0_optimizer.lr=0.1"), fake_job(sweep, "1_optimizer.lr=0.2")]
    old = (sweep / "multirun.yaml").stat().st_mtime_ns - 10**9
    os.utime(stale / ".hydra" / "overrides.yaml", ns=(old, old))
    assert report.job_dirs(sweep) == ours


# --- printed commands run as printed -----------------------------------------------------------------------

def test_a_sweep_jobs_resume_line_parses_as_printed(tmp_path, monkeypatch):
    """A job dir holds `,` and `=`: unquoted, Hydra read the path as a sweep of two values."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(guards, "of_planned", lambda trainer: " of 12")
    monkeypatch.setattr(guards.run_dir, "_started", True)  # stopped after a step: else nothing to resume
    job_dir = Path("outputs/multirun/12-06_07-00-00_1/0_model.hidden_dim=4,optimizer.lr=0.1")
    saver = guards.SaveOnInterrupt(job_dir / "checkpoints")
    saver.signum = 15
    command = guards.resume_command(["model.hidden_dim=4", "optimizer.lr=0.1", "+note='a b'"])
    with pytest.raises(exits.Interrupted) as stopped:
        with guards.interruptible(SimpleNamespace(global_step=6), saver, command):
            from lightning.pytorch.utilities.exceptions import SIGTERMException
            raise SIGTERMException()
    line = str(stopped.value).split("resume with: ", 1)[1]
    argv = shlex.split(line)
    assert argv[:3] == ["python", "-m", "primer.train"]
    overrides = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(argv[3:])}
    assert overrides == {"model.hidden_dim": 4, "optimizer.lr": 0.1, "note": "a b",
                         "ckpt_path": str(job_dir / "checkpoints" / "interrupted.ckpt")}
    cfg = compose_config(tmp_path / "run", [o for o in argv[3:] if not o.startswith("+note")])
    assert cfg.ckpt_path == str(job_dir / "checkpoints" / "interrupted.ckpt")


# --- a sweep run again reads its records as data ----------------------------------------------------------

def test_a_damaged_finished_record_is_named_and_its_job_runs_again(tmp_path, monkeypatch):
    from primer.sweeps import sweep_resume

    warnings = []
    monkeypatch.setattr(sweep_resume.log, "warning", warnings.append)
    cfg = compose_config(tmp_path / "job", TINY)
    job = tmp_path / "job"
    job.mkdir()
    for damaged in ("{", "[1, 2]", '{"config": {}, "result": "x"}'):
        (job / "metrics.json").write_text("{}")
        (job / "finished.json").write_text(damaged)
        assert finished_result(cfg) is None
        [warning] = warnings
        assert warning.startswith(f"cannot read {job / 'finished.json'}: ") and warning.endswith("; the job runs again")
        assert not (job / "finished.json").exists()  # run again, it writes its own
        warnings.clear()


# --- studies: a storage the jobs cannot reach is refused, a damaged journal named -----------------------------

def test_a_study_in_memory_is_refused_in_one_line(cli, tmp_path):
    code, _, err = cli("-m", "hparams_search=optuna", "hydra.sweeper.storage=sqlite:///:memory:", *TINY[:3])
    assert code == exits.BAD_INPUT and err.count("\n") == 1, err
    assert err.startswith("error: hydra.sweeper.storage=sqlite:///:memory:: a study in memory is lost with this "
                          "process and its trials' jobs cannot reach it;")
    assert not (tmp_path / "outputs" / "multirun").exists() or not any((tmp_path / "outputs" / "multirun").iterdir())


def test_a_damaged_journal_is_named_in_one_line(cli, tmp_path):
    (tmp_path / "study.log").write_text("this is no journal\n{\"op_code\": 0}\n")
    code, _, err = cli("-m", "hparams_search=optuna", "hydra.sweeper.storage=journal:///study.log", *TINY[:3])
    assert code == exits.BAD_INPUT and err.count("\n") == 1, err
    assert err.startswith("error: hydra.sweeper.storage=journal:///study.log: study.log is not an Optuna journal (")


def test_a_storage_that_fails_is_an_environment_fault_naming_it_without_its_password():
    from sqlalchemy.exc import OperationalError

    from primer.sweeps.studies import reaching

    with pytest.raises(exits.EnvironmentFault) as raised:
        with reaching("postgresql+psycopg://primer:secret@db.example:5432/studies"):
            raise OperationalError("SELECT 1", {}, Exception("connection refused\nmore detail"))
    assert str(raised.value) == ("the study's storage failed: postgresql+psycopg://primer:***@db.example:5432/studies: "
                                 "connection refused")


def test_an_error_whose_causes_loop_passes_the_storage_check_unchanged():
    """`a.__context__ = b; b.__context__ = a`: the walk to SQLAlchemy's error ends at the loop (it never did)."""
    from primer.sweeps.studies import reaching

    error, wrapped = ValueError("not the storage's"), KeyError("its context")
    error.__context__, wrapped.__context__ = wrapped, error
    raised = []

    def check():
        try:
            with reaching("sqlite:///study.db"):
                raise error
        except Exception as found:  # noqa: BLE001  what reaching let through
            raised.append(found)

    thread = threading.Thread(target=check, daemon=True)  # a walk that never ends must not hang the tests
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive() and len(raised) == 1 and raised[0] is error


def test_an_errors_causes_are_walked_once_each_and_set_up_names_the_one_under_hydras_wrapper():
    from hydra.errors import InstantiationException

    error, wrapped = ValueError("not the storage's"), KeyError("its context")
    error.__context__, wrapped.__context__ = wrapped, error
    assert list(exits.causes(error)) == [error, wrapped]  # the loop walked once
    assert list(exits.causes(None)) == []
    with pytest.raises(exits.BadConfig) as refused, exits.setting_up("optimizer"):
        try:
            raise ValueError("Invalid learning rate: -1")
        except ValueError as why:
            raise InstantiationException("Error in call to target 'torch.optim.SGD'") from why
    assert str(refused.value) == "optimizer: ValueError: Invalid learning rate: -1 (HYDRA_FULL_ERROR=1 shows where)"


def test_a_database_server_that_cannot_be_reached_ends_the_search_in_one_line_exit_5(cli, tmp_path):
    """Was SQLAlchemy's text as "bad input" (exit 2), with the password in the command line it repeated."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://me:secret@127.0.0.1:{port}/studies"
    code, _, err = cli("-m", "hparams_search=optuna", f"hydra.sweeper.storage={url}", "hydra.sweep.dir=sweep")
    assert code == exits.ENVIRONMENT and err.count("\n") == 1, err
    assert err.startswith(f"error: the study's storage failed: postgresql+psycopg://me:***@127.0.0.1:{port}/studies: "
                          "connection failed: ") and "secret" not in err


# --- primer.eval: bad checkpoints, read-only dirs, full disks and non-finite metrics ---------------------

def evaluate(cli, path, *overrides):
    for handler in logging.getLogger().handlers[:]:  # an earlier in-process run's console, bound to a closed capture
        logging.getLogger().removeHandler(handler)
    return cli(f"ckpt_path={path}", *overrides, main=primer_eval.main, prog="primer.eval")


def test_eval_of_a_state_dict_that_is_a_list_ends_in_one_line(cli, tmp_path):
    path = write_checkpoint(tmp_path / "final.ckpt", stored_as_primer_writes(TINY))
    checkpoint = read_checkpoint(path)
    checkpoint["state_dict"] = list(checkpoint["state_dict"].values())
    torch.save(checkpoint, path)
    code, _, err = evaluate(cli, path)
    assert code == exits.BAD_INPUT and err == (f"error: ckpt_path={path}: refused: its state_dict is a list, not "
                                               "weights by name; nothing was run (use a checkpoint written by "
                                               "primer.train)\n")


def test_eval_into_a_read_only_dir_ends_in_one_line_exit_5(cli, tmp_path, monkeypatch):
    path = write_checkpoint(tmp_path / "final.ckpt", stored_as_primer_writes(TINY))

    def read_only(*args, **kwargs):  # the test runs as root, whom a chmod does not stop
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / ".final.eval.json.x.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    code, _, err = evaluate(cli, path)
    assert code == exits.ENVIRONMENT and err == f"error: Permission denied: {tmp_path / 'final.eval.json'}\n"


def test_eval_on_a_full_disk_keeps_the_earlier_result(cli, tmp_path, monkeypatch):
    path = write_checkpoint(tmp_path / "final.ckpt", stored_as_primer_writes(TINY))
    assert evaluate(cli, path)[0] == 0
    earlier = (tmp_path / "final.eval.json").read_bytes()
    full_disk(monkeypatch)
    code, _, err = evaluate(cli, path)
    assert code == exits.ENVIRONMENT and err == f"error: No space left on device: {tmp_path / 'final.eval.json'}\n"
    assert (tmp_path / "final.eval.json").read_bytes() == earlier


def test_eval_of_non_finite_weights_writes_strict_json(cli, tmp_path):
    path = write_checkpoint(tmp_path / "final.ckpt", stored_as_primer_writes(TINY))
    checkpoint = read_checkpoint(path)
    checkpoint["state_dict"] = {k: torch.full_like(v, float("nan")) for k, v in checkpoint["state_dict"].items()}
    torch.save(checkpoint, path)
    code, out, err = evaluate(cli, path)
    assert code == 0, err
    text = (tmp_path / "final.eval.json").read_text()
    metrics = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert metrics["val/loss"] == "nan" and json.loads(out) == metrics


# --- a real full disk ----------------------------------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    """A 4 MiB tmpfs, mounted for the test; skipped where mounting is not permitted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mount],
                                                       capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    yield mount
    subprocess.run(["umount", "-l", mount], check=False)


def fill(disk: Path) -> None:
    """Takes every free byte of the file system."""
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as full:
            assert full.errno == errno.ENOSPC


@pytest.mark.slow
def test_a_run_again_into_its_dir_on_a_full_disk_keeps_the_earlier_results(tmp_path, small_tmpfs):
    run = small_tmpfs / "run"
    first = run_cli(*TINY, *QUIET, f"hydra.run.dir={run}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    kept = {name: (run / name).read_bytes() for name in ("metrics.json", "run.json", "checkpoints/final.ckpt")}
    fill(small_tmpfs)
    again = run_cli(*TINY, *QUIET, f"hydra.run.dir={run}", cwd=tmp_path)
    assert again.returncode == exits.ENVIRONMENT, again.stderr
    assert again.stderr.splitlines()[-1] == f"error: No space left on device: a file in {run}"
    assert "Traceback" not in again.stderr and "Logging error" not in again.stderr
    assert {name: (run / name).read_bytes() for name in kept} == kept
    assert read_checkpoint(run / "checkpoints" / "final.ckpt")["global_step"] == 6
