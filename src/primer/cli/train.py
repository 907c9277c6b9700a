"""Train one of the primer's networks with Lightning, configured by Hydra.

    python -m primer.train                                       # TwoLayerNet, SGD, 500 steps, CPU
    python -m primer.train model=custom_relu trainer.accelerator=gpu
    python -m primer.train model=manual                          # the tutorial's lr comes with the model
    python -m primer.train --cfg job                             # print the composed config
    python -m primer.train -m 'experiment=glob(*)'               # the tutorial's training sections, in order
"""

import logging
import math
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from primer import exits
from primer.checks import preflight
from primer.sweeps import sweep_resume
from primer.config import CONFIG_DIR, task_config
from primer.exits import Diverged, EndCommand, Ending, Interrupted, setting_up
from primer.sweeps.report import record_failure


def train(cfg: DictConfig) -> dict[str, float]:
    """Fits the configured net to the configured data; returns the final logged metrics."""
    from primer.run.guards import stop_cleanly_until_training  # heavy imports: here, so --help stays instant
    from primer.cli.threads import use_cores_given

    logging.getLogger("lightning").handlers.clear()  # Hydra's handlers already print and file its messages
    with use_cores_given(HydraConfig.get().launcher) as cores, stop_cleanly_until_training():
        return _train(cfg, cores)


def _train(cfg: DictConfig, cores: dict) -> dict[str, float]:
    """The run itself: seed -> data -> net -> system -> Trainer -> fit -> what came out."""
    import lightning as L
    import torch
    from hydra.utils import instantiate
    from lightning.pytorch.loggers import TensorBoardLogger

    from primer.run.console import final_block
    from primer.run.guards import SaveOnInterrupt, interruptible, resume_command
    from primer.cli.quiet import quiet_third_party
    from primer.run.results import final_metrics
    from primer.checks.resume import resume_from
    from primer.checks.scaleout import use_submitit_tasks_as_ranks
    from primer.run.system import Regression
    from primer.checks.fit_checks import metrics_for

    quiet_third_party()
    use_submitit_tasks_as_ranks()
    torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
    with open_dict(cfg):
        cfg.seed = L.seed_everything(draw_seed() if cfg.seed is None else cfg.seed)
    with setting_up("data"):
        datamodule = instantiate(cfg.data)
    with setting_up("model"):
        net = instantiate(cfg.model)
    with setting_up("optimizer"):
        optimizer = instantiate(cfg.optimizer)
        optimizer(net.parameters())  # a bad combination of its values fails here, not inside trainer.fit
    with setting_up("scheduler"):
        scheduler = instantiate(cfg.scheduler) if cfg.scheduler else None
    system = Regression(net, optimizer, input_dim=cfg.data.input_dim, scheduler=scheduler, metrics=metrics_for(cfg))
    overrides = list(HydraConfig.get().overrides.task)
    checkpoints = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None)
    saver = SaveOnInterrupt(checkpoints or f"{cfg.trainer.default_root_dir}/checkpoints")  # Ctrl-C, SIGTERM
    with setting_up("trainer"):
        loggers, callbacks = loggers_and_callbacks(cfg, overrides, saver, cores)
        trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks, **barebones_settings(cfg))

    first_step = callbacks[-1].parts[-1]
    with interruptible(trainer, saver, resume_command(overrides)), setting_up("trainer.fit", first_step.done):
        trainer.fit(system, datamodule=datamodule, ckpt_path=resume_from(cfg), weights_only=True)
    if trainer.is_global_zero:
        event_dirs = [lg.log_dir for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        print(final_block(cfg.paths.output_dir, next(iter(event_dirs), None)))  # what came out, and where
    return final_metrics(trainer)


def draw_seed() -> int:
    """seed=null: a fresh seed, shared with the DDP processes Lightning starts (they inherit PL_GLOBAL_SEED)."""
    import os
    import random

    return int(os.environ.get("PL_GLOBAL_SEED") or random.SystemRandom().randrange(2**32))


def loggers_and_callbacks(cfg: DictConfig, overrides: list[str], saver, cores: dict) -> tuple[list, list]:
    """The configured loggers and callbacks, less those a Trainer flag turns off, plus primer's own.
    The last callback holds primer's own (primer.run.together), the FirstStep marker last. `cores`
    (primer.cli.threads) goes into run.json with the seed."""
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import LearningRateMonitor

    from primer.run.checkpoints import ApplyOptimizerConfig, StoreConfig
    from primer.cli.parts import run_hparams
    from primer.run.guards import FirstStep, StopOnNonFinite, seed_lr_advice
    from primer.sweeps.pruning import trial_reporter
    from primer.run.results import RunSummary
    from primer.run.together import Together

    off = switched_off(cfg.trainer)
    if not OmegaConf.select(cfg, "callbacks.histograms.every_n_steps"):
        off.add("histograms")  # at 0 it writes nothing, and Lightning would still call its hooks every step
    # logger=[] and callbacks=[] (lightning-hydra-template's spelling of none) compose no key at all
    loggers = [] if "logger" in off else [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    callbacks = [instantiate(c) for name, c in (cfg.get("callbacks") or {}).items() if name not in off]
    if cfg.scheduler and loggers:
        callbacks.append(LearningRateMonitor(logging_interval="step"))  # logs lr-SGD, lr-Adam
    advice = seed_lr_advice(HydraConfig.get().runtime.choices.model, OmegaConf.select(cfg, "tutorial"))
    own = Together(RunSummary(cfg.paths.output_dir, run_hparams(cfg), inputs={"seed": cfg.seed, **cores}),
                   StopOnNonFinite(advice), saver,
                   StoreConfig(cfg, overrides),
                   ApplyOptimizerConfig(OmegaConf.to_container(cfg.optimizer, resolve=True)),  # lr: ${tutorial.lr}
                   *trial_reporter(cfg.paths.output_dir),  # an Optuna trial: val/loss to its pruner
                   FirstStep())
    return loggers, callbacks + [own]


def switched_off(trainer_cfg: DictConfig) -> set[str]:
    """The configured parts a Trainer flag turns off, instead of clashing with them (Lightning refuses
    enable_checkpointing=false beside a ModelCheckpoint, and barebones=true beside any of them)."""
    barebones = trainer_cfg.get("barebones", False)
    flags = {"model_checkpoint": "enable_checkpointing", "progress_bar": "enable_progress_bar",
             "model_summary": "enable_model_summary", "logger": "logger"}
    return {part for part, flag in flags.items() if barebones or trainer_cfg.get(flag) is False}


def barebones_settings(cfg: DictConfig) -> dict:
    """barebones=true turns logging off; primer's log_every_n_steps default must then give way."""
    return {"log_every_n_steps": None} if cfg.trainer.get("barebones", False) else {}


def save_task_config(cfg: DictConfig) -> None:
    """Rewrites the run's .hydra/config.yaml after the task changed it (a drawn seed): the stored config is what ran."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.output_subdir is not None:
        OmegaConf.save(task_config(cfg), Path(hydra_cfg.runtime.output_dir, hydra_cfg.output_subdir, "config.yaml"))


_task_started = False  # errors raised before it are Hydra's rejections of the command line


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def hydra_main(cfg: DictConfig) -> float:
    """Returns the final val/loss, what a sweeper minimizes. A sweep's job prints one line as it ends
    and leaves the rest in its log (primer.sweeps.sweep_console)."""
    from primer.sweeps.sweep_console import one_line_per_job

    global _task_started
    _task_started = True
    if HydraConfig.get().mode != RunMode.MULTIRUN:
        return run_job(cfg)
    # A sweep re-run into its own dir skips the jobs that finished there with this config.
    if (kept := sweep_resume.finished_result(cfg)) is not None:
        return kept
    with one_line_per_job():
        return run_job(cfg)


def run_job(cfg: DictConfig) -> float:
    """A run or one job of a sweep.

    The config is checked here where Hydra's callback did not check it in this process
    (primer.checks.preflight): submitit jobs, joblib workers, Optuna trials. A single run's ending (bad input, diverged,
    interrupted) leaves for primer.exits; in a sweep, a job that fails is logged and recorded
    (failure.txt, for the sweep summary) and returns NaN, so the other jobs still run.
    """
    from primer.checks.scaleout import check_scale_out
    from primer.checks.validation import check

    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    drawn = cfg.seed is None
    try:
        if not preflight.checked_every_job():  # a submitit job, a joblib worker, an Optuna trial
            check(cfg)
            check_scale_out(cfg, multirun)
        val_loss = train(cfg).get("val/loss", math.nan)
        if multirun:
            sweep_resume.record_finished(cfg, val_loss)
        return val_loss
    except Ending as ending:
        if isinstance(ending, (Diverged, Interrupted)) or multirun:  # say in the run dir why it stopped
            record_failure(cfg.paths.output_dir, ending)
        if not multirun or isinstance(ending, Interrupted):  # Ctrl-C stops the whole sweep
            raise EndCommand(ending) from ending.__cause__
        logging.getLogger(__name__).error(f"this job failed; the sweep goes on: {ending}")
        return math.nan
    except Exception as error:
        if not multirun:
            raise
        logging.getLogger(__name__).exception("this job failed; the sweep goes on")
        record_failure(cfg.paths.output_dir, error)
        return math.nan
    finally:
        if drawn and cfg.seed is not None:
            save_task_config(cfg)


def main() -> None:
    """`python -m primer.train` and `primer-train`: every ending in one line and its exit code (primer.exits)."""
    if {"--help", "-h"} & set(sys.argv[1:]):
        from primer.cli.usage import help_text

        print(help_text())
        return
    global _task_started
    _task_started = False
    preflight.forget()  # a new command (tests run several in one process)
    exits.let_hydra_raise()
    with exits.command_line():
        try:
            hydra_main()
        except Exception as error:
            if _task_started:
                raise  # a bug: the traceback is what is needed
            from primer.checks.preflight import describe_hydra_error

            raise describe_hydra_error(error, overrides_in(sys.argv[1:])) from error


def overrides_in(argv: list[str]) -> list[str]:
    """The key=value overrides of a command line, without Hydra's flags and their values."""
    with_value = {"--cfg", "-c", "--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp", "--package",
                  "-p", "--experimental-rerun"}
    return [a for i, a in enumerate(argv) if not a.startswith("-") and (i == 0 or argv[i - 1] not in with_value)]


if __name__ == "__main__":
    main()
