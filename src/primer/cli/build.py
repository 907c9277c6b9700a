"""A run's parts built from its config and Hydra's runtime: data, net, optimizer, loggers, callbacks, plugins."""

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from primer.config import key_and_value, task_config
from primer.exits import setting_up
from primer.writes import write_atomic


def data_net_optimizer(cfg: DictConfig) -> tuple:
    """The datamodule, the net and the optimizer factory the config names; an error names its group."""
    with setting_up("data"):
        datamodule = instantiate(cfg.data)
    with setting_up("model"):
        net = instantiate(cfg.model)
    with setting_up("optimizer"):
        optimizer = instantiate(cfg.optimizer)
        optimizer(net.parameters())  # a bad combination of its values fails here, not inside trainer.fit
    return datamodule, net, optimizer


def loggers_and_callbacks(cfg: DictConfig, cores: dict) -> tuple[list, list]:
    """The loggers and callbacks set, less those a Trainer flag turns off (Lightning refuses them), and primer's own."""
    from lightning.pytorch.callbacks import LearningRateMonitor

    from primer.run.callback_group import CallbackGroup
    from primer.run.checkpoints import ApplyOptimizerConfig, StoreConfig
    from primer.run.guards import SaveOnInterrupt, StopOnNonFinite, TrainingStarted, tutorial_lr_advice
    from primer.run.results import RunSummary
    from primer.sweeps.pruning import trial_reporter

    flags = {"model_checkpoint": "enable_checkpointing", "progress_bar": "enable_progress_bar",
             "model_summary": "enable_model_summary", "logger": "logger"}
    off = {part for part, flag in flags.items() if cfg.trainer.get("barebones") or cfg.trainer.get(flag) is False}
    if not OmegaConf.select(cfg, "callbacks.histograms.every_n_steps"):
        off.add("histograms")  # at 0 it writes nothing, and Lightning would still call its hooks every step
    # logger=[] and callbacks=[] compose no key at all; logger.NAME=null or callbacks.NAME=null: that one is off
    loggers = [] if "logger" in off else [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    callbacks = [instantiate(c) for name, c in (cfg.get("callbacks") or {}).items()
                 if name not in off and c is not None]
    if cfg.scheduler and loggers:
        callbacks.append(LearningRateMonitor(logging_interval="step"))  # logs lr-SGD, lr-Adam
    hydra = HydraConfig.get()
    checkpoints = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None)
    own = CallbackGroup(TrainingStarted(),  # first: a divergence found at step 1 stops a run that is kept
                        RunSummary(cfg.paths.output_dir, run_hparams(cfg), inputs={"seed": cfg.seed, **cores},
                                   trial=trial_name(hydra, cfg.paths.output_dir)),
                        StopOnNonFinite(tutorial_lr_advice(hydra.runtime.choices.model, cfg.get("tutorial"))),
                        SaveOnInterrupt(checkpoints or f"{cfg.trainer.default_root_dir}/checkpoints"),
                        StoreConfig(cfg, list(hydra.overrides.task)),
                        ApplyOptimizerConfig(OmegaConf.to_container(cfg.optimizer, resolve=True)),  # lr: ${tutorial.lr}
                        *trial_reporter(hydra, cfg.paths.output_dir))  # an Optuna trial: val/loss to its pruner
    return loggers, callbacks + [own]


def plugins(cfg: DictConfig) -> list:
    """The configured Trainer plugins, and primer's checkpoint IO (atomic saves; a resume deletes nothing it names)."""
    from primer.run.checkpoint_io import RunCheckpointIO

    configured = cfg.trainer.get("plugins") or []
    return [*instantiate(configured if isinstance(configured, (list, ListConfig)) else [configured]), RunCheckpointIO()]


def save_task_config(cfg: DictConfig) -> None:
    """Rewrites the run's .hydra/config.yaml after the task changed it (a drawn seed): the stored config is what ran."""
    hydra = HydraConfig.get()
    if hydra.output_subdir is not None:
        path = Path(hydra.runtime.output_dir, hydra.output_subdir, "config.yaml")
        write_atomic(path, OmegaConf.to_yaml(task_config(cfg)))


def trial_name(hydra: DictConfig, output_dir: str) -> str:
    """HPARAMS' Trial ID (~15 characters show): the run dir's name, or a sweep job's values, then where it is."""
    # a config composed without @hydra.main (tests, benchmarks) has no runtime dir: the run's own
    run_dir = Path(output_dir if OmegaConf.is_missing(hydra.runtime, "output_dir") else hydra.runtime.output_dir)
    if hydra.mode != RunMode.MULTIRUN:
        return run_dir.name
    values = run_dir.name.removeprefix(f"{hydra.job.num}").removeprefix("_")
    where = f"{run_dir.parent.name}/{hydra.job.num}"
    return f"{values} {where}" if values else where


def run_hparams(cfg: DictConfig) -> dict[str, str | bool | int | float | None]:
    """The run's choices and values, flat (`optimizer.lr`), as HPARAMS takes them; every key the command line set."""
    hydra = HydraConfig.get()
    hparams = {g: c for g, c in hydra.runtime.choices.items() if not g.startswith("hydra")}
    hparams |= {"seed": cfg.seed, "trainer.max_steps": cfg.trainer.max_steps}
    for group in ("model", "optimizer", "data"):
        hparams |= {f"{group}.{k}": v for k, v in OmegaConf.to_container(cfg[group], resolve=True).items()
                    if not k.startswith("_")}
    for key, typed in (key_and_value(o) for o in hydra.overrides.task if not o.startswith("~")):
        if key not in hparams and not key.startswith("hydra"):
            found = OmegaConf.select(cfg, key)
            # a group chosen as a list (logger=[tensorboard,mlflow]), which Hydra's choices leave out: as typed
            hparams[key] = typed if OmegaConf.is_config(found) else found
    return {k: v if v is None or isinstance(v, (str, bool, int, float)) else str(v) for k, v in hparams.items()}
