"""The Lightning system: fits any of the tutorial's nets to (x, y) batches and logs `{stage}/loss` and torchmetrics."""

import math
from collections.abc import Callable, Mapping, Sequence

import lightning as L
import torch
from torch import nn
from torchmetrics import ExplainedVariance, MeanSquaredError, MetricCollection, R2Score
from torchmetrics.functional import explained_variance, mean_squared_error, r2_score

from primer.run.dashboard import loss_name
from primer.tutorial.nets import HandGradientNet

# each metric's class (val/test: a state over the epoch) and function (train: one batch, a third of the class's time)
MEASURES = {"mse": (MeanSquaredError, mean_squared_error), "r2": (R2Score, r2_score),
            "explained_variance": (ExplainedVariance, explained_variance)}
METRICS = tuple(MEASURES)


class Regression(L.LightningModule):
    """Fits a plain nn.Module to (x, y) by the summed squared error (a HandGradientNet with its own gradients); train
    values are computed on logging steps and the last only. Under DDP N processes train as one on the global batch.
    `planned_steps_args` name the scheduler's arguments given the run's planned_steps (CosineAnnealingLR's T_max)."""

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        input_dim: int,
        scheduler: Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler] | Mapping | None = None,
        metrics: Sequence[str] = METRICS,
        planned_steps_args: Sequence[str] = (),
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler", "planned_steps_args"])
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler  # or Lightning's lr_scheduler dict, its "scheduler" a factory
        self.planned_steps_args = tuple(planned_steps_args)
        self.loss_fn = nn.MSELoss(reduction="sum")
        self.automatic_optimization = not isinstance(net, HandGradientNet)
        self.input_dim = input_dim
        self.train_metrics = regression_metrics("train/", metrics)
        self.val_metrics = regression_metrics("val/", metrics)
        self.test_metrics = regression_metrics("test/", metrics)
        self._unlogged: tuple[torch.Tensor, ...] | None = None  # the last step's (loss, y_pred, y), if not logged

    @property
    def example_input_array(self) -> torch.Tensor:
        return torch.zeros(1, self.input_dim, dtype=self.dtype)  # in the dtype the precision gave the net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.net.parameters())
        if self.scheduler_factory is None:
            return optimizer
        given = self.scheduler_factory
        given = given if isinstance(given, Mapping) else {"scheduler": given}
        # counted here, where Lightning knows the data, the devices and accumulate_grad_batches
        length = dict.fromkeys(self.planned_steps_args, planned_steps(self.trainer))
        # stepped every step unless the dict says otherwise: a run is one long epoch over the same batch
        scheduler = {"interval": "step", **given, "scheduler": given["scheduler"](optimizer, **length)}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def training_step(self, batch, batch_idx: int):
        x, y = batch
        # before a manual step moves global_step; barebones forbids self.log
        log_now = not self.trainer.barebones and is_logging_step(self.trainer, self.global_step + 1, batch_idx)
        if self.automatic_optimization:
            y_pred = self.net(x)
            loss = self.loss_fn(y_pred, y)
        else:
            y_pred, loss = self._hand_gradient_step(x, y)
        if log_now:
            self._log_train(loss, y_pred.detach(), y)
        if completes_step(self.trainer, batch_idx):
            # kept, not computed: logged only if training stops on this step (on_train_epoch_end)
            self._unlogged = None if log_now or self.trainer.barebones else (loss.detach(), y_pred.detach(), y)
        world_size = self.trainer.world_size  # DDP averages the ranks' gradients, but the loss sums rows
        return loss * world_size if world_size > 1 else loss

    def _log_train(self, loss: torch.Tensor, y_pred: torch.Tensor, y: torch.Tensor) -> None:
        # Not prog_bar, which Lightning reads on the host every step; logger=False: `_write_train_values` writes them.
        self.log(loss_name("train"), loss, sync_dist=True, reduce_fx="sum", logger=False)
        self.log_dict(self._batch_metrics(y_pred, y), logger=False)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # every curve starts at step 1 and ends where metrics.json does: Lightning writes every log_every_n_steps only
        if not self.trainer.barebones and is_logging_step(self.trainer, self.global_step, batch_idx):
            self._write_train_values(self.global_step)

    def on_train_epoch_end(self) -> None:
        # stopped on no logging step (max_time, early stopping): Lightning logs no step values after validation
        if self._unlogged is not None:
            self._log_train(*self._unlogged)
            self._unlogged = None
            self._write_train_values(self.global_step)

    def _write_train_values(self, step: int) -> None:
        logged = {k: v for k, v in self.trainer.callback_metrics.items() if k.startswith("train/")}
        for logger in self.loggers:
            logger.log_metrics(logged, step=step - 1)  # Lightning's step numbering: the first step is 0

    def _batch_metrics(self, y_pred: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        # under DDP of the global batch, through the classes' synced compute
        if self.trainer.world_size == 1:
            return {name: MEASURES[name.removeprefix("train/")][1](y_pred, y) for name in self.train_metrics}
        self.train_metrics.reset()
        self.train_metrics.update(y_pred, y)
        return self.train_metrics.compute()

    def _hand_gradient_step(self, x: torch.Tensor, y: torch.Tensor):
        y_pred, loss, grads = self.net.loss_and_gradients(x, y)
        for param, grad in zip(self.net.parameters(), grads):
            param.grad = self.trainer.strategy.reduce(grad, reduce_op="sum")  # no autograd, so no DDP hooks
        optimizer = self.optimizers()
        optimizer.step()  # through Lightning's wrapper, so global_step advances
        optimizer.zero_grad()
        if (scheduler := self.lr_schedulers()) is not None:
            scheduler.step()
        return y_pred, loss

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def _evaluate(self, batch, stage: str, metrics: MetricCollection) -> None:
        if self.trainer.barebones:
            return
        x, y = batch
        y_pred = self.net(x)
        self.log(loss_name(stage), self.loss_fn(y_pred, y), sync_dist=True, reduce_fx="sum")
        metrics.update(y_pred, y)
        self.log_dict(metrics)  # computed and synced once, at the epoch's end


def is_logging_step(trainer: L.Trainer, step: int, batch_idx: int) -> bool:
    """The first step (from 1), every `log_every_n_steps`, the last: when training values are computed and logged."""
    every = trainer.log_every_n_steps
    return completes_step(trainer, batch_idx) and (
        step == 1
        or (every > 0 and step % every == 0)
        or step == trainer.max_steps
        or batch_idx + 1 == trainer.num_training_batches
    )


def completes_step(trainer: L.Trainer, batch_idx: int) -> bool:
    """Whether this batch ends an optimizer step (accumulate_grad_batches, as Lightning decides)."""
    return (batch_idx + 1) % trainer.accumulate_grad_batches == 0 or batch_idx + 1 == trainer.num_training_batches


def planned_steps(trainer: L.Trainer) -> int | None:
    """The optimizer steps the run takes (a scheduler's length, the "of N" a run shows): trainer.max_steps, else as
    Lightning counts them; None where only max_time ends the run, or Lightning has no data yet."""
    if trainer.max_steps > 0:
        return trainer.max_steps
    try:
        total = trainer.estimated_stepping_batches
    except Exception:  # before Lightning has the data (a signal during set-up)
        return None
    return int(total) if math.isfinite(total) else None


def regression_metrics(prefix: str, names: Sequence[str] = METRICS, **kwargs) -> MetricCollection:
    return MetricCollection({name: MEASURES[name][0](**kwargs) for name in names}, prefix=prefix)


def metrics_for(data: Mapping) -> tuple[str, ...]:
    """The metrics data's batches allow: r2 and explained variance need two rows in every batch they see."""
    rows = [data.get(key) for key in ("batch_size", "val_size", "test_size")]
    return METRICS if min(r for r in rows if r is not None) >= 2 else ("mse",)


def logged_in_fit(metrics: Sequence[str] = METRICS) -> list[str]:
    """What a callback can monitor, named by the functions the steps log with."""
    return [name for stage in ("train", "val")
            for name in (loss_name(stage), *regression_metrics(f"{stage}/", metrics))]
