"""Weight and gradient histograms for TensorBoard's HISTOGRAMS tab, every n training steps."""

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger


class ParameterHistograms(L.Callback):
    """Every parameter and its gradient, every `every_n_steps` (0: off), just before the optimizer step."""

    def __init__(self, every_n_steps: int = 0):
        self.every_n_steps = every_n_steps

    @torch.no_grad()
    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        step = trainer.global_step
        if not self.every_n_steps or step % self.every_n_steps or not trainer.is_global_zero:
            return
        for writer in (lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)):
            for name, param in pl_module.named_parameters():
                writer.add_histogram(f"weights/{name}", param, step)
                if param.grad is not None:
                    writer.add_histogram(f"gradients/{name}", param.grad, step)
