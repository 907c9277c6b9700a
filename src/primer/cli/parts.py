"""The parts of a run that come from its config and Hydra's runtime: what primer.cli.train assembles."""

import os
import random
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf

from primer.config import key_and_value, task_config
from primer.exits import setting_up
from primer.run.dashboard import HParamValue
from primer.writes import write_atomic


def draw_seed() -> int:
    """seed=null: a fresh seed, shared with the DDP processes Lightning starts (they inherit PL_GLOBAL_SEED)."""
    return int(os.environ.get("PL_GLOBAL_SEED") or random.SystemRandom().randrange(2**32))


def data_net_optimizer(cfg: DictConfig) -> tuple:
    """The datamodule, the net and the optimizer factory the config names; an error names its group."""
    from hydra.utils import instantiate

    with setting_up("data"):
        datamodule = instantiate(cfg.data)
    with setting_up("model"):
        net = instantiate(cfg.model)
    with setting_up("optimizer"):
        optimizer = instantiate(cfg.optimizer)
        optimizer(net.parameters())  # a bad combination of its values fails here, not inside trainer.fit
    return datamodule, net, optimizer


def loggers_and_callbacks(cfg: DictConfig, cores: dict) -> tuple[list, list]:
    """The configured loggers and callbacks, less those a Trainer flag turns off, plus primer's own
    (primer.run.together), found by type where needed. `cores` (primer.cli.threads) goes into run.json."""
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import LearningRateMonitor

    from primer.run.checkpoints import ApplyOptimizerConfig, StoreConfig
    from primer.run.guards import SaveOnInterrupt, StopOnNonFinite, TrainingStarted, tutorial_lr_advice
    from primer.run.results import RunSummary
    from primer.run.together import Together
    from primer.sweeps.pruning import trial_reporter

    off = switched_off(cfg.trainer)
    if not OmegaConf.select(cfg, "callbacks.histograms.every_n_steps"):
        off.add("histograms")  # at 0 it writes nothing, and Lightning would still call its hooks every step
    # logger=[] and callbacks=[] (lightning-hydra-template's spelling of none) compose no key at all
    # logger.NAME=null or callbacks.NAME=null: that one is off
    loggers = [] if "logger" in off else [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    callbacks = [instantiate(c) for name, c in (cfg.get("callbacks") or {}).items()
                 if name not in off and c is not None]
    if cfg.scheduler and loggers:
        callbacks.append(LearningRateMonitor(logging_interval="step"))  # logs lr-SGD, lr-Adam
    hydra = HydraConfig.get()
    checkpoints = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None)
    saver = SaveOnInterrupt(checkpoints or f"{cfg.trainer.default_root_dir}/checkpoints")  # Ctrl-C, SIGTERM
    advice = tutorial_lr_advice(hydra.runtime.choices.model, OmegaConf.select(cfg, "tutorial"))
    own = Together(TrainingStarted(),  # first: a divergence found at step 1 stops a run that is kept
                   RunSummary(cfg.paths.output_dir, run_hparams(cfg), inputs={"seed": cfg.seed, **cores},
                              trial=trial_name(hydra, cfg.paths.output_dir)),
                   StopOnNonFinite(advice), saver,
                   StoreConfig(cfg, list(hydra.overrides.task)),
                   ApplyOptimizerConfig(OmegaConf.to_container(cfg.optimizer, resolve=True)),  # lr: ${tutorial.lr}
                   *trial_reporter(cfg.paths.output_dir))  # an Optuna trial: val/loss to its pruner
    return loggers, callbacks + [own]


def switched_off(trainer_cfg: DictConfig) -> set[str]:
    """The configured parts a Trainer flag turns off, instead of clashing with them (Lightning refuses
    enable_checkpointing=false beside a ModelCheckpoint, and barebones=true beside any of them)."""
    barebones = trainer_cfg.get("barebones", False)
    flags = {"model_checkpoint": "enable_checkpointing", "progress_bar": "enable_progress_bar",
             "model_summary": "enable_model_summary", "logger": "logger"}
    return {part for part, flag in flags.items() if barebones or trainer_cfg.get(flag) is False}


def plugins(cfg: DictConfig) -> list:
    """The configured Trainer plugins (+trainer.plugins=...), and primer's checkpoint IO
    (primer.run.checkpoint_io): atomic saves, and a resume that deletes nothing its checkpoint names."""
    from hydra.utils import instantiate

    from primer.run.checkpoint_io import RunCheckpointIO

    configured = cfg.trainer.get("plugins")
    configured = [] if configured is None else list(configured) if isinstance(configured, ListConfig) else [configured]
    return [*instantiate(configured), RunCheckpointIO()]


def barebones_settings(cfg: DictConfig) -> dict:
    """barebones=true turns logging off; primer's log_every_n_steps default must then give way."""
    return {"log_every_n_steps": None} if cfg.trainer.get("barebones", False) else {}


def save_task_config(cfg: DictConfig) -> None:
    """Rewrites the run's .hydra/config.yaml after the task changed it (a drawn seed): the stored config is what ran."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.output_subdir is not None:
        path = Path(hydra_cfg.runtime.output_dir, hydra_cfg.output_subdir, "config.yaml")
        write_atomic(path, OmegaConf.to_yaml(task_config(cfg)))


def trial_name(hydra_cfg: DictConfig, output_dir: str) -> str:
    """The run's name in HPARAMS' Trial ID column, which shows its first ~15 characters: the run dir's name
    (what it changed first), or for a sweep's job the values it varies, then where it is
    (`lr0.001 1206-074148_9014_lr/1`)."""
    from hydra.types import RunMode

    # a config composed without @hydra.main (tests, benchmarks) has no runtime dir: the run's own
    runtime = hydra_cfg.runtime
    run_dir = Path(output_dir if OmegaConf.is_missing(runtime, "output_dir") else runtime.output_dir)
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return run_dir.name
    values = run_dir.name.removeprefix(f"{hydra_cfg.job.num}").removeprefix("_")
    where = f"{run_dir.parent.name}/{hydra_cfg.job.num}"
    return f"{values} {where}" if values else where


def run_hparams(cfg: DictConfig) -> dict[str, HParamValue]:
    """The run's choices and values, flat (`optimizer.lr`), as HPARAMS takes them.

    Every key the command line set is included, so a swept key always has its column.
    """
    hydra = HydraConfig.get()
    hparams = {g: c for g, c in hydra.runtime.choices.items() if not g.startswith("hydra")}
    hparams |= {"seed": cfg.seed, "trainer.max_steps": cfg.trainer.max_steps}
    for group in ("model", "optimizer", "data"):
        for key, value in OmegaConf.to_container(cfg[group], resolve=True).items():
            if not key.startswith("_"):
                hparams[f"{group}.{key}"] = value
    for key, typed in (key_and_value(o) for o in hydra.overrides.task if not o.startswith("~")):
        if key not in hparams and not key.startswith("hydra"):
            found = OmegaConf.select(cfg, key)
            # a group chosen as a list (logger=[tensorboard,mlflow]), which Hydra's choices leave out: as typed
            hparams[key] = typed if OmegaConf.is_config(found) else found
    return {k: v if v is None or isinstance(v, (str, bool, int, float)) else str(v) for k, v in hparams.items()}
