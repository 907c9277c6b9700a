"""How a job ends, in one wrapper around the Hydra task (as lightning-hydra-template's `task_wrapper`)."""

import contextlib
import functools
import logging
import math
from collections.abc import Callable

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from primer.exits import BadConfig, Diverged, EndCommand, Ending, Interrupted, environment_fault, signals_stop

log = logging.getLogger(__name__)


class Bug(BaseException):
    """An unexpected error from the task, carried past Hydra so that the command shows its traceback."""

    def __init__(self, error: Exception):
        super().__init__(repr(error))
        self.error = error


def task_wrapper(task: Callable[[DictConfig], float]) -> Callable[[DictConfig], float]:
    """A run's ending goes to primer.exits; a failed sweep job is recorded and returns NaN (Ctrl-C ends the sweep)."""

    @functools.wraps(task)
    def wrapped(cfg: DictConfig) -> float:
        from primer.sweeps import sweep_resume
        from primer.sweeps.sweep_console import one_line_per_job

        multirun = HydraConfig.get().mode == RunMode.MULTIRUN
        resume = _interrupted_checkpoint(cfg) if multirun else None
        if multirun and (kept := sweep_resume.finished_result(cfg, resumes=resume is not None)) is not None:
            return kept
        with one_line_per_job() if multirun else contextlib.nullcontext():
            return _ended(task, cfg, multirun, resume)

    return wrapped


def _set_ckpt_path(cfg: DictConfig, path: str | None) -> None:
    with open_dict(cfg):
        cfg.ckpt_path = path


def _interrupted_checkpoint(cfg: DictConfig) -> str | None:
    """The checkpoint a signal left in this job's dir, if a resume from it passes the checks; else None (said why)."""
    from primer.checks.checkpoint_files import check_resume
    from primer.sweeps import sweep_resume

    if (path := sweep_resume.interrupted_checkpoint(cfg)) is not None:
        _set_ckpt_path(cfg, path)
        try:
            check_resume(cfg)
        except BadConfig as refused:
            log.warning(f"this job starts afresh: its interrupted checkpoint cannot be resumed: {refused}")
            path = None
        _set_ckpt_path(cfg, None)
    return path


def _ended(task: Callable[[DictConfig], float], cfg: DictConfig, multirun: bool, resume: str | None = None) -> float:
    from primer.checks.preflight import check_job, checked_before_running

    try:
        with run_records(cfg, multirun):
            if not checked_before_running(HydraConfig.get()):
                check_job(cfg, multirun)
            if resume is not None:  # while it trains: its finished record holds the config as the sweep gave it
                log.info(f"this job goes on from {resume}, where a signal stopped it")
                _set_ckpt_path(cfg, resume)
            try:
                return task(cfg)
            finally:
                if resume is not None:
                    _set_ckpt_path(cfg, None)
    except Exception as error:  # noqa: BLE001  every ending goes one way: recorded, then raised or logged
        ending = error if isinstance(error, Ending) else environment_fault(error, where=cfg.paths.output_dir)
        if not multirun or isinstance(ending, Interrupted):
            raise (EndCommand(ending) if ending else Bug(error)) from (error.__cause__ if ending is error else error)
        (log.error if ending is error else log.exception)(f"this job failed; the sweep goes on: {ending or error}")
    return math.nan


@contextlib.contextmanager
def run_records(cfg: DictConfig, multirun: bool):
    """What a run leaves in its dir as it ends, from the command line or primer.fit: why it stopped, the seed drawn, a
    sweep job's finished.json; and a signal's line, which says whether training had started."""
    from primer.cli.build import save_task_config
    from primer.run import run_dir
    from primer.sweeps.report import record_failure, record_interrupted
    from primer.sweeps.sweep_resume import record_finished

    drawn, failed = cfg.seed is None, False
    with signals_stop(run_dir.last_claimed, run_dir.has_started):
        try:
            yield
        except Exception as error:
            ending = error if isinstance(error, Ending) else environment_fault(error, where=cfg.paths.output_dir)
            started, interrupted = run_dir.has_started(), isinstance(ending, Interrupted)
            failed = not interrupted
            if interrupted and started and multirun:
                record_interrupted(cfg.paths.output_dir, ending)  # the sweep's summary lists it as interrupted
            elif (multirun and not interrupted) or (started and isinstance(ending, (Interrupted, Diverged))):
                record_failure(cfg.paths.output_dir, ending or error)  # the run dir says why it stopped
            raise
        finally:
            if drawn and cfg.seed is not None and run_dir.has_started():  # a dir given back holds no config of this run
                save_task_config(cfg)
            if multirun and not failed:  # also where a signal came after training ended: a continued sweep skips it
                record_finished(cfg)
