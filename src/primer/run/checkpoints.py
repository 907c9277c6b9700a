"""Checkpoints that carry their run's config, and a resume that applies the run's optimizer values.

What a checkpoint may hold before anything reads it is checked in primer.checks.checkpoint_files.
"""

import lightning as L
from omegaconf import DictConfig, OmegaConf

from primer.config import task_config

CONFIG_KEY = "primer"  # checkpoint[CONFIG_KEY] = {"config": composed config, "overrides": [...]}


class StoreConfig(L.Callback):
    """Puts the run's composed config (a plain dict) and its command-line overrides in every checkpoint,
    so that `primer.eval` can rebuild the model and data, and a resume can be checked against them."""

    def __init__(self, cfg: DictConfig, overrides: list[str]):
        self.stored = {"config": OmegaConf.to_container(task_config(cfg), resolve=True), "overrides": list(overrides)}

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[CONFIG_KEY] = self.stored


class ApplyOptimizerConfig(L.Callback):
    """On a resume, sets the restored optimizer's hyperparameters (lr, momentum, ...) to this run's config,
    so that what runs is what the run's stored config says (Lightning restores the checkpoint's)."""

    def __init__(self, optimizer_config: dict):
        self.values = {k: v for k, v in optimizer_config.items() if not k.startswith("_")}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.ckpt_path is None:
            return
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                for key, value in self.values.items():
                    if key in group:
                        group[key] = tuple(value) if isinstance(group[key], tuple) else value
