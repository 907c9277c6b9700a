"""Weight and gradient histograms for TensorBoard's HISTOGRAMS tab, every n training steps."""

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger


class ParameterHistograms(L.Callback):
    """Writes every parameter of the net and its gradient as histograms every `every_n_steps` steps.

    Off when every_n_steps is 0: a histogram copies each tensor to the host and costs more
    than a training step of the primer's nets. Hooked just before the optimizer step, where
    the gradients are complete in both automatic and manual (hand-derived) optimization.
    """

    def __init__(self, every_n_steps: int = 0):
        self.every_n_steps = every_n_steps

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        step = trainer.global_step
        if not self.every_n_steps or step % self.every_n_steps or not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                self._write(logger.experiment, pl_module, step)

    @staticmethod
    @torch.no_grad()
    def _write(writer, pl_module: L.LightningModule, step: int) -> None:
        for name, param in pl_module.named_parameters():
            writer.add_histogram(f"weights/{name}", param, step)
            if param.grad is not None:
                writer.add_histogram(f"gradients/{name}", param.grad, step)
