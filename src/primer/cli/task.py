"""How a job ends, in one wrapper around the Hydra task (as lightning-hydra-template's `task_wrapper`)."""

import contextlib
import functools
import logging
import math
from collections.abc import Callable

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from primer.exits import Diverged, EndCommand, Ending, Interrupted, environment_fault

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
      run, but Ctrl-C stops the whole sweep;
    - a drawn seed (seed=null) is written back into the run's .hydra/config.yaml.
    """

    @functools.wraps(task)
    def wrapped(cfg: DictConfig) -> float:
        from primer.sweeps import sweep_resume
        from primer.sweeps.sweep_console import one_line_per_job

        multirun = HydraConfig.get().mode == RunMode.MULTIRUN
        if multirun and (kept := sweep_resume.finished_result(cfg)) is not None:
            return kept
        with one_line_per_job() if multirun else contextlib.nullcontext():
            return _ended(task, cfg, multirun)

    return wrapped


def _ended(task: Callable[[DictConfig], float], cfg: DictConfig, multirun: bool) -> float:
    from primer.checks.preflight import check_job, checked_before_running
    from primer.cli.parts import save_task_config
    from primer.run import run_dir
    from primer.sweeps import sweep_resume
    from primer.sweeps.report import record_failure

    drawn = cfg.seed is None
    try:
        if not checked_before_running(HydraConfig.get()):
            check_job(cfg, multirun)
        result = task(cfg)
        if multirun:
            sweep_resume.record_finished(cfg, result)
        return result
    except Ending as ending:
        if multirun or (isinstance(ending, (Diverged, Interrupted)) and run_dir.has_started()):
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
