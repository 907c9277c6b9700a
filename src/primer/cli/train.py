"""Train one of the primer's nets with Lightning, configured by Hydra.

    python -m primer.train [group=choice ...] [key=value ...]     # --cfg job: print the config; -m: a sweep"""

import logging
import math
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from primer import exits
from primer.cli.task import Bug, task_wrapper
from primer.config import CONFIG_DIR, CONFIG_NAME, planned_steps_args
from primer.exits import setting_up
from primer.sweeps.sweep_console import SweepStart


def fit_run(cfg: DictConfig) -> tuple[dict[str, float], dict]:
    """seed -> data -> net -> system -> Trainer -> fit -> (final metrics, {trainer, system, datamodule, cfg})."""
    import os
    import random

    import lightning as L  # heavy imports here, so --help and config errors stay instant
    import torch
    from hydra.utils import instantiate

    from primer.checks.checkpoint_files import resume_from
    from primer.cli import build
    from primer.cli.quiet import own_checkpoints_dir_reused, quiet_third_party
    from primer.cli.threads import use_cores_given
    from primer.run import run_dir
    from primer.run.callback_group import find
    from primer.run.checkpoints import resumes_into
    from primer.run.console import final_block, tensorboard_dir
    from primer.run.experiment import logdir_of, write_experiment
    from primer.run.guards import SaveOnInterrupt, StopOnNonFinite, anomaly_is_divergence, interruptible, resume_command
    from primer.run.ranks import use_submitit_tasks_as_ranks
    from primer.run.results import final_metrics
    from primer.run.system import Regression, metrics_for

    logging.getLogger("lightning").handlers.clear()  # Hydra's handlers already print and file its messages
    quiet_third_party()
    use_submitit_tasks_as_ranks()
    hydra_cfg = HydraConfig.get()
    output_dir = Path(cfg.paths.output_dir)  # already claimed where the command line or the API started the run
    with setting_up("paths.output_dir"):  # a file in the way: bad input; a read-only dir: the machine's fault
        run_dir.claim(output_dir, f"paths.output_dir={output_dir}", resumes_into(cfg, output_dir))
    with run_dir.given_back_unless_started(), use_cores_given(hydra_cfg.launcher) as cores:
        torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
        with open_dict(cfg):  # seed=null: a fresh one, shared with the DDP processes Lightning starts
            drawn = int(os.environ.get("PL_GLOBAL_SEED") or random.SystemRandom().randrange(2**32))
            cfg.seed = L.seed_everything(drawn if cfg.seed is None else cfg.seed)
        datamodule, net, optimizer = build.data_net_optimizer(cfg)
        with setting_up("scheduler"):
            scheduler = instantiate(cfg.scheduler) if cfg.scheduler else None
        system = Regression(net, optimizer, cfg.data.input_dim, scheduler=scheduler, metrics=metrics_for(cfg.data),
                            planned_steps_args=planned_steps_args(cfg.scheduler))
        with setting_up("trainer"):
            loggers, callbacks = build.loggers_and_callbacks(cfg, cores)
            barebones = {"log_every_n_steps": None} if cfg.trainer.get("barebones") else {}  # it logs nothing
            trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks, plugins=build.plugins(cfg),
                                  **barebones)
        command = resume_command(list(hydra_cfg.overrides.task))
        with interruptible(trainer, find(callbacks, SaveOnInterrupt), command), \
                setting_up("trainer.fit", run_dir.has_started), \
                anomaly_is_divergence(trainer, find(callbacks, StopOnNonFinite)), \
                own_checkpoints_dir_reused(output_dir):
            trainer.fit(system, datamodule=datamodule, ckpt_path=resume_from(cfg), weights_only=True)
    if trainer.is_global_zero:  # a signal from here on says training ended (primer.cli.task.run_records)
        print(final_block(cfg.paths.output_dir, tensorboard_dir(trainer)))  # what came out, and where
        if hydra_cfg.mode != RunMode.MULTIRUN and (logdir := logdir_of(cfg.paths.output_dir)):
            write_experiment(logdir)  # HPARAMS' columns for `tensorboard --logdir outputs` (a sweep: at its end)
    return final_metrics(trainer), {"trainer": trainer, "system": system, "datamodule": datamodule, "cfg": cfg}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=CONFIG_NAME)
@task_wrapper
def hydra_main(cfg: DictConfig) -> float:
    """The final val/loss: what a sweeper minimizes."""
    from primer.run.dashboard import VAL_LOSS

    metrics, _ = fit_run(cfg)
    return metrics.get(VAL_LOSS, math.nan)


def main() -> None:
    """The command line; primer.train runs it inside primer.exits.command_line, which ends it in one line."""
    from primer.checks.hydra_errors import flags_after_overrides
    from primer.run import run_dir

    argv = sys.argv[1:]
    if {"--help", "-h"} & set(argv):
        from primer.cli.usage import help_text

        print(help_text())
        return
    if misplaced := flags_after_overrides(argv):
        raise misplaced
    exits.let_hydra_raise()
    SweepStart.sweep_dir = None  # an earlier command's, in a test's process
    try:
        # an ending before the task, as Hydra sets the run up; a signal after training, as Hydra ends the job
        with run_dir.given_back_unless_started(), exits.signals_stop(run_dir.last_claimed, run_dir.has_started):
            hydra_main()
    except Bug as bug:
        raise bug.error  # a bug: the traceback is what is needed
    except (exits.EndCommand, KeyboardInterrupt) as stop:
        ending = getattr(stop, "ending", stop)  # Ctrl-C or SIGTERM: in a job (Interrupted), or in Hydra between jobs
        if SweepStart.sweep_dir is None or not isinstance(ending, (exits.Interrupted, KeyboardInterrupt)):
            raise
        from primer.sweeps.sweep_console import interrupted

        raise exits.EndCommand(interrupted(ending)) from None  # a sweep's summary, and how to go on
    except Exception as error:  # the task routes its own errors: this is Hydra rejecting the command line
        from primer.checks.hydra_errors import FLAGS_WITH_VALUE, describe_hydra_error

        # Hydra failing to write .hydra/ or train.log, a sweeper its storage; Hydra forgets a run's dir as its job ends
        known = HydraConfig.initialized() and OmegaConf.select(HydraConfig.get(), "runtime.output_dir")
        if fault := exits.environment_fault(error, where=SweepStart.sweep_dir or known or run_dir.last_claimed()):
            raise fault from error
        overrides = [a for i, a in enumerate(argv)
                     if not a.startswith("-") and (i == 0 or argv[i - 1] not in FLAGS_WITH_VALUE)]
        raise describe_hydra_error(error, overrides, argv=argv) from error
