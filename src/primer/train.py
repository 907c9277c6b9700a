"""Train one of the primer's networks with Lightning, configured by Hydra.

    python -m primer.train                                       # TwoLayerNet, SGD, 500 steps, CPU
    python -m primer.train model=custom_relu trainer.accelerator=gpu
    python -m primer.train model=manual optimizer.lr=1e-6
    python -m primer.train --cfg job                             # print the composed config
    python -m primer.train -m 'experiment=glob(*)'               # the whole primer, one job per section
"""

import logging
import math
import sys
import warnings

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from primer.config import CONFIG_DIR, BadConfig, check_command_line
from primer.report import record_failure


def train(cfg: DictConfig) -> dict[str, float]:
    """Fits the configured net to the configured data; returns the final logged metrics."""
    import lightning as L  # heavy imports here, so --help and config errors stay instant
    import torch
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import LearningRateMonitor

    from primer.checkpoints import StoreConfig
    from primer.console import final_block
    from primer.dashboard import run_hparams
    from primer.guards import SaveOnInterrupt, StopOnNonFinite, interruptible, resume_command
    from primer.results import RunSummary, final_metrics
    from primer.scaleout import use_submitit_tasks_as_ranks
    from primer.system import Regression

    logging.getLogger("lightning").handlers.clear()  # Hydra's handlers already print and file its messages
    # Every batch is the same batch (primer.data.RepeatedBatch): a resume mid-epoch is exact.
    warnings.filterwarnings("ignore", "You're resuming from a checkpoint that ended before the epoch ended")
    # Lines a primer user can do nothing about: torch 2.13's deprecation of a call inside Lightning 2.6,
    # and Lightning's advertisement for its cloud logger at every start.
    warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(not_for_users)  # once per process

    use_submitit_tasks_as_ranks()
    torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
    L.seed_everything(cfg.seed)
    datamodule = instantiate(cfg.data)
    net = instantiate(cfg.model)
    scheduler = instantiate(cfg.scheduler) if cfg.scheduler else None
    system = Regression(net, optimizer=instantiate(cfg.optimizer), input_dim=cfg.data.input_dim, scheduler=scheduler)
    loggers = [instantiate(c) for c in (cfg.logger or {}).values()]
    callbacks = [instantiate(c) for name, c in (cfg.callbacks or {}).items() if wanted(name, cfg)]
    overrides = list(HydraConfig.get().overrides.task)
    saver = SaveOnInterrupt(f"{cfg.paths.output_dir}/checkpoints")  # Ctrl-C, SIGTERM: save, then stop
    callbacks += [RunSummary(cfg.paths.output_dir, *run_hparams(cfg)), StopOnNonFinite(), saver,
                  StoreConfig(cfg, overrides)]
    if scheduler and loggers:
        callbacks.append(LearningRateMonitor(logging_interval="step"))  # logs lr-SGD, lr-Adam
    trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)

    with interruptible(trainer, saver, resume_command(overrides)):
        trainer.fit(system, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
    if trainer.is_global_zero:
        print(final_block(cfg.paths.output_dir))  # the console's last lines: what came out and where
    return final_metrics(trainer)


def not_for_users(record: logging.LogRecord) -> bool:
    """Drops the litlogger advert, and Lightning's note that the configured model summary replaces its own."""
    message = record.getMessage()
    return "litlogger" not in message and "Skipping setting a default `ModelSummary`" not in message


TRAINER_SWITCHES = {"progress_bar": "enable_progress_bar", "model_summary": "enable_model_summary"}


def wanted(callback_name: str, cfg: DictConfig) -> bool:
    """trainer.enable_progress_bar=false (enable_model_summary=false) turns off the configured
    callback instead of clashing with it."""
    switch = TRAINER_SWITCHES.get(callback_name)
    return switch is None or cfg.trainer[switch] is not False


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def hydra_main(cfg: DictConfig) -> float:
    """Returns the final val/loss, what a sweeper minimizes.

    A single run that diverges or is interrupted ends in one line and its exit code (primer.guards).
    In a sweep, a job that raises is logged and recorded (primer.report) and returns NaN, so the
    remaining jobs still run and the sweep summary lists it as failed; Ctrl-C stops the sweep.
    """
    from primer.guards import one_line_exit

    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        with one_line_exit(multirun):
            return train(cfg).get("val/loss", math.nan)
    except Exception as error:
        if not multirun:
            raise
        logging.getLogger(__name__).exception("this job failed; the sweep goes on")
        record_failure(cfg.paths.output_dir, error)
        return math.nan


def main() -> None:
    """Stops bad input with one line and exit code 2, before Hydra makes a run dir."""
    if {"--help", "-h"} & set(sys.argv[1:]):
        from primer.usage import help_text

        print(help_text())
        return
    try:
        check_command_line(sys.argv[1:])
    except BadConfig as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    hydra_main()


if __name__ == "__main__":
    main()
