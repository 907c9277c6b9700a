"""A run's checkpoints: the config they carry, the optimizer values a resume applies, and the file `ckpt_path`
names, as Trainer.fit reads it (from the launch dir, also under hydra.job.chdir=true)."""

import copy
import os
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf, open_dict

from primer.config import launch_dir, task_config
from primer.exits import BadConfig
from primer.run.files import INTERRUPTED

CONFIG_KEY = "primer"  # checkpoint[CONFIG_KEY] = {"config": composed config, "overrides": [...]}


class StoreConfig(L.Callback):
    """Puts the run's config and overrides in every checkpoint: primer.eval rebuilds from them, a resume checks them."""

    def __init__(self, cfg: DictConfig, overrides: list[str]):
        self.stored = {"config": OmegaConf.to_container(task_config(cfg), resolve=True), "overrides": list(overrides)}

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[CONFIG_KEY] = self.stored


class ApplyOptimizerConfig(L.Callback):
    """On a resume, sets the restored optimizer's values (lr, momentum, ...) to this run's config, as stored."""

    def __init__(self, optimizer_config: dict):
        self.values = {k: v for k, v in optimizer_config.items() if not k.startswith("_")}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.ckpt_path is None:
            return
        for group in (group for optimizer in trainer.optimizers for group in optimizer.param_groups):
            for key in self.values.keys() & group.keys():  # betas: a tuple in torch, a list in the config
                group[key] = tuple(self.values[key]) if isinstance(group[key], tuple) else self.values[key]


def checkpoint_to_resume(cfg: DictConfig) -> str | None:
    """The absolute path a run of `cfg` resumes from; None: it starts from scratch."""
    typed = _resolved(cfg, "ckpt_path")
    if typed == "best":
        raise BadConfig("ckpt_path=best: Lightning's 'best' is the best checkpoint of an earlier fit in the same "
                        "process, and a new run has none; give the checkpoint's path, or ckpt_path=last")
    if typed == "last":  # ModelCheckpoint's save_last files, or SaveOnInterrupt's; none: from scratch, as in Lightning
        last = f"{ModelCheckpoint.CHECKPOINT_NAME_LAST}*{ModelCheckpoint.FILE_EXTENSION}"
        found = [p for d in checkpoint_dirs(cfg) for p in [*d.glob(last), d / INTERRUPTED] if p.is_file()]
        return str(max(found, key=lambda p: p.stat().st_mtime)) if found else None
    if typed == "hpc" and (root := _run_values(cfg, "trainer.default_root_dir")[0]):  # None: a sweep job's, not made
        numbered = {int(p.stem[9:]): p for p in Path(root).glob("hpc_ckpt_*.ckpt") if p.stem[9:].isdigit()}
        if not numbered:
            raise BadConfig(f"ckpt_path=hpc: no hpc_ckpt_N.ckpt in {root} (Lightning saves them there when SLURM "
                            "requeues a job); give the checkpoint's path")
        return str(numbered[max(numbered)])
    return None if typed in (None, "hpc") else os.path.join(_launch_dir(cfg), str(typed))  # absolute stays so


def resumes_into(cfg: DictConfig, run_dir: str | Path) -> bool:
    """Whether the run resumes from a checkpoint inside its own dir (its curve and log go on there)."""
    path = checkpoint_to_resume(cfg)
    return path is not None and Path(path).resolve().is_relative_to(Path(run_dir).resolve())


def checkpoint_dirs(cfg: DictConfig) -> list[Path]:
    """Where `last` looks: the ModelCheckpoint's dirpath, and <default_root_dir>/checkpoints (SaveOnInterrupt's)."""
    dirpath, root = _run_values(cfg, "callbacks.model_checkpoint.dirpath", "trainer.default_root_dir")
    return list(dict.fromkeys(Path(_launch_dir(cfg), d) for d in (dirpath, root and f"{root}/checkpoints") if d))


def _launch_dir(cfg: DictConfig) -> str:
    # the config Hydra composed knows where the command started; the task's config asks HydraConfig
    return OmegaConf.select(cfg, "hydra.runtime.cwd", default=None) or launch_dir()


def _run_values(cfg: DictConfig, *keys: str) -> list:
    # before Hydra makes the run dir it is hydra.run.dir (a sweep job's is unknown: None)
    if _resolved(cfg, "paths.output_dir") is None and (run_dir := _resolved(cfg, "hydra.run.dir")):
        if getattr(OmegaConf.select(cfg, "hydra.mode"), "name", None) == "MULTIRUN":
            return [None] * len(keys)
        cfg = copy.deepcopy(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = os.path.join(_launch_dir(cfg), str(run_dir))
    return [_resolved(cfg, key) for key in keys]


def _resolved(cfg: DictConfig, key: str):
    # None also where it names a run dir Hydra has not set yet
    return OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
