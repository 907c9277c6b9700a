"""Where a resume comes from: `ckpt_path` as Lightning's Trainer.fit reads it (a path, `last`, `hpc`,
`best`), and paths read from the dir the command was started in, also under hydra.job.chdir=true."""

import json
import os
import shlex
import shutil
import signal

import pytest
from hydra import compose, initialize_config_dir
from hydra.types import RunMode
from omegaconf import read_write

from primer.config import CONFIG_DIR, CONFIG_NAME
from primer.exits import BadConfig
from primer.run.checkpoints import checkpoint_to_resume
from tests.conftest import QUIET, TINY, run_cli
from tests.test_reliability import LONG, SAVED, interrupt


def touch(path, age_s: float):
    """An empty file at `path`, last modified `age_s` seconds ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime - age_s))
    return path


def test_last_is_the_newest_last_or_interrupted_checkpoint_in_the_runs_checkpoint_dir(make_config, tmp_path):
    checkpoints = tmp_path / "run/checkpoints"
    touch(checkpoints / "final.ckpt", 0)  # the newest file, but not a "last" one
    touch(checkpoints / "last.ckpt", 30)
    newest = touch(checkpoints / "last-v1.ckpt", 20)
    assert checkpoint_to_resume(make_config("ckpt_path=last")) == str(newest)
    interrupted = touch(checkpoints / "interrupted.ckpt", 10)  # primer's on-exception checkpoint
    assert checkpoint_to_resume(make_config("ckpt_path=last")) == str(interrupted)


def test_last_looks_in_the_checkpoint_dirpath_read_from_the_launch_dir(make_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    last = touch(tmp_path / "elsewhere/last.ckpt", 0)
    cfg = make_config("ckpt_path=last", "callbacks.model_checkpoint.dirpath=elsewhere")
    assert checkpoint_to_resume(cfg) == str(last)


def test_last_without_a_checkpoint_is_a_fresh_start_as_in_lightning(make_config):
    assert checkpoint_to_resume(make_config("ckpt_path=last")) is None


def test_last_is_read_from_hydra_run_dir_before_hydra_makes_it(tmp_path):
    """The check before a run sees the config Hydra composed, whose run dir is not made yet."""
    last = touch(tmp_path / "run/checkpoints/last.ckpt", 0)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=[f"hydra.run.dir={tmp_path / 'run'}", "ckpt_path=last"],
                      return_hydra_config=True)
    with read_write(cfg.hydra):
        cfg.hydra.mode = RunMode.RUN  # as Hydra sets it before its callbacks run
    assert checkpoint_to_resume(cfg) == str(last)


def test_hpc_is_the_highest_numbered_hpc_checkpoint_in_the_root_dir(make_config, tmp_path):
    for number in (2, 10, 9):
        touch(tmp_path / f"run/hpc_ckpt_{number}.ckpt", number)
    assert checkpoint_to_resume(make_config("ckpt_path=hpc")) == str(tmp_path / "run/hpc_ckpt_10.ckpt")


@pytest.mark.parametrize(("keyword", "message"), [
    ("hpc", "ckpt_path=hpc: no hpc_ckpt_N.ckpt in "),
    ("best", "ckpt_path=best: Lightning's 'best' is the best checkpoint of an earlier fit in the same process"),
])
def test_a_keyword_with_nothing_to_resume_is_refused_in_one_line(make_config, keyword, message):
    with pytest.raises(BadConfig) as refused:
        checkpoint_to_resume(make_config(f"ckpt_path={keyword}"))
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_a_relative_ckpt_path_is_read_from_the_launch_dir_after_hydra_changes_dir(make_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = make_config("ckpt_path=outputs/first/checkpoints/final.ckpt", "hydra.job.chdir=true")
    (tmp_path / "run").mkdir()
    monkeypatch.chdir(tmp_path / "run")  # as Hydra does before the task runs
    assert checkpoint_to_resume(cfg) == str(tmp_path / "outputs/first/checkpoints/final.ckpt")


# --- through the command line --------------------------------------------------------------------------------

SAVE_LAST = [*TINY, *QUIET, "+callbacks.model_checkpoint.save_last=true", "hydra.run.dir=outputs/run"]


def run_json(run_dir) -> dict:
    return json.loads((run_dir / "run.json").read_text())


@pytest.mark.slow  # trains in this process
def test_ckpt_path_last_resumes_from_the_last_checkpoint_of_the_run_dir(cli, tmp_path):
    code, _, err = cli(*SAVE_LAST)
    assert code == 0 and (tmp_path / "outputs/run/checkpoints/last.ckpt").is_file(), err[-3000:]
    code, out, err = cli(*SAVE_LAST, "trainer.max_steps=8", "ckpt_path=last")
    assert code == 0, err[-3000:]
    assert run_json(tmp_path / "outputs/run")["resumed_at_step"] == 6 and "done: 8 steps (resumed at step 6)" in out


@pytest.mark.slow  # trains in this process
def test_ckpt_path_hpc_resumes_from_the_highest_numbered_hpc_checkpoint(cli, tmp_path):
    code, _, err = cli(*TINY, *QUIET, "hydra.run.dir=outputs/run")
    assert code == 0, err[-3000:]
    shutil.copy(tmp_path / "outputs/run/checkpoints/final.ckpt", tmp_path / "outputs/run/hpc_ckpt_1.ckpt")
    code, out, err = cli(*TINY, *QUIET, "hydra.run.dir=outputs/run", "trainer.max_steps=8", "ckpt_path=hpc")
    assert code == 0, err[-3000:]
    assert run_json(tmp_path / "outputs/run")["resumed_at_step"] == 6


@pytest.mark.slow  # trains in this process
def test_ckpt_path_last_without_a_checkpoint_trains_from_scratch_and_says_so(cli, tmp_path):
    code, out, err = cli(*SAVE_LAST, "ckpt_path=last")
    assert code == 0, err[-3000:]
    note = next(line for line in out.splitlines() if line.startswith("ckpt_path=last: "))  # logged, as Lightning's are
    assert note.endswith("training starts from scratch, as Lightning does (+callbacks.model_checkpoint.save_last=true "
                         "keeps a last.ckpt)")
    assert "resumed_at_step" not in run_json(tmp_path / "outputs/run")


@pytest.mark.slow  # trains in this process
def test_a_relative_ckpt_path_under_chdir_resumes_and_the_last_block_names_the_run_dir(cli, tmp_path):
    code, _, err = cli(*TINY, *QUIET, "hydra.run.dir=outputs/first")
    assert code == 0, err[-3000:]
    code, out, err = cli(*TINY, *QUIET, "hydra.job.chdir=true", "hydra.run.dir=outputs/second", "trainer.max_steps=8",
                         "ckpt_path=outputs/first/checkpoints/final.ckpt")
    assert code == 0, err[-3000:]
    assert run_json(tmp_path / "outputs/second")["resumed_at_step"] == 6
    assert "  run dir     outputs/second\n" in out


@pytest.mark.slow  # trains in this process
def test_a_missing_relative_ckpt_path_under_chdir_is_refused_before_the_run(cli, tmp_path):
    code, _, err = cli(*TINY, *QUIET, "hydra.job.chdir=true", "ckpt_path=nothing/here.ckpt")
    assert code == 2 and err == "error: ckpt_path=nothing/here.ckpt: no such file\n"
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_the_resume_hint_of_a_ctrl_c_under_chdir_is_a_path_that_resumes(tmp_path):
    last_line = interrupt(tmp_path, [*LONG, "hydra.job.chdir=true"], signal.SIGINT)
    command = last_line.partition("resume with: ")[2]
    assert command.endswith(f"ckpt_path={SAVED}")  # from the dir the command was started in, not the run dir
    resumed = run_cli(*shlex.split(command)[3:], "hydra.job.chdir=true", "hydra.run.dir=outputs/resumed", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert run_json(tmp_path / "outputs/resumed")["resumed_at_step"] == 40
