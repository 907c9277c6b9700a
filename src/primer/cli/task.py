"""How a job ends, in one wrapper around the Hydra task (as lightning-hydra-template's `task_wrapper`)."""

import contextlib
import functools
import logging
import math
from collections.abc import Callable

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from primer.exits import BadConfig, Diverged, EndCommand, Ending, Interrupted, environment_fault

log = logging.getLogger(__name__)


class Bug(BaseException):
    """An unexpected error from inside the task, carried past Hydra (which lets BaseExceptions through), so
    that the command shows its traceback instead of describing it as a command line Hydra could not compose."""

    def __init__(self, error: Exception):
        super().__init__(repr(error))
        self.error = error


def task_wrapper(task: Callable[[DictConfig], float]) -> Callable[[DictConfig], float]:
    """The task with its endings routed, for a run and for each job of a sweep:

    - a job Hydra's callback did not check in this process (submitit, joblib, an Optuna trial) is checked here;
    - a sweep re-run into its own dir skips the jobs that finished there with this config;
    - a sweep job prints one line as it ends and leaves the rest in its log;
    - a run's ending (bad input, diverged, interrupted) leaves through `EndCommand` to primer.exits; a sweep
      job that fails is recorded (failure.txt, for the sweep summary) and returns NaN, so the others still
      run, but Ctrl-C stops the whole sweep: the job is recorded as interrupted, and goes on from its
      interrupted.ckpt when the sweep is continued (primer.sweeps.sweep_console.interrupted);
    - a drawn seed (seed=null) is written back into the run's .hydra/config.yaml.
    """

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


def _interrupted_checkpoint(cfg: DictConfig) -> str | None:
    """The checkpoint a signal left in this sweep job's dir, where a resume from it passes the checks every
    resume passes (the same net, optimizer, steps to go); else None, and the job starts afresh, saying why."""
    from primer.checks.checkpoint_files import check_resume
    from primer.sweeps import sweep_resume

    if (path := sweep_resume.interrupted_checkpoint(cfg)) is None:
        return None
    with open_dict(cfg):
        cfg.ckpt_path = path
    try:
        check_resume(cfg)
    except BadConfig as refused:
        log.warning(f"this job starts afresh: its interrupted checkpoint cannot be resumed: {refused}")
        path = None
    finally:
        with open_dict(cfg):
            cfg.ckpt_path = None
    return path


@contextlib.contextmanager
def _going_on_from(cfg: DictConfig, checkpoint: str | None):
    """The job resumes from `checkpoint` (ckpt_path) while it trains; its finished record holds the config as
    the sweep gave it (no ckpt_path), so that running the sweep again skips it."""
    if checkpoint is None:
        yield
        return
    log.info(f"this job goes on from {checkpoint}, where a signal stopped it")
    with open_dict(cfg):
        cfg.ckpt_path = checkpoint
    try:
        yield
    finally:
        with open_dict(cfg):
            cfg.ckpt_path = None


def _ended(task: Callable[[DictConfig], float], cfg: DictConfig, multirun: bool, resume: str | None = None) -> float:
    from primer.checks.preflight import check_job, checked_before_running
    from primer.cli.build import save_task_config
    from primer.run import run_dir
    from primer.sweeps import sweep_resume
    from primer.sweeps.report import record_failure, record_interrupted

    drawn = cfg.seed is None
    try:
        if not checked_before_running(HydraConfig.get()):
            check_job(cfg, multirun)
        with _going_on_from(cfg, resume):
            result = task(cfg)
        if multirun:
            sweep_resume.record_finished(cfg, result)
        return result
    except Interrupted as stop:
        if multirun and run_dir.has_started():  # the sweep's summary lists it as interrupted, not failed
            record_interrupted(cfg.paths.output_dir, stop)
        elif run_dir.has_started():
            record_failure(cfg.paths.output_dir, stop)  # say in the run dir why it stopped
        raise EndCommand(stop) from stop.__cause__
    except Ending as ending:
        if multirun or (isinstance(ending, Diverged) and run_dir.has_started()):
            record_failure(cfg.paths.output_dir, ending)  # say in the run dir why it stopped
        if not multirun or isinstance(ending, Interrupted):
            raise EndCommand(ending) from ending.__cause__
        log.error(f"this job failed; the sweep goes on: {ending}")
    except Exception as error:
        fault = environment_fault(error, where=cfg.paths.output_dir)  # a full disk, a read-only dir
        if not multirun:
            raise EndCommand(fault) if fault else Bug(error) from error
        log.exception("this job failed; the sweep goes on")
        record_failure(cfg.paths.output_dir, fault or error)
    finally:
        if drawn and cfg.seed is not None:
            save_task_config(cfg)
    return math.nan
