"""The Lightning system: trains any of the primer's nets on (x, y) batches."""

import math
from collections.abc import Callable, Mapping, Sequence

import lightning as L
import torch
from torch import nn
from torchmetrics import ExplainedVariance, MeanSquaredError, MetricCollection, R2Score
from torchmetrics.functional import explained_variance, mean_squared_error, r2_score

from primer.tutorial.nets import HandGradientNet

METRICS = ("mse", "r2", "explained_variance")
METRIC_CLASSES = {"mse": MeanSquaredError, "r2": R2Score, "explained_variance": ExplainedVariance}
# The same math without a metric's state: a training step's metrics are those of its batch alone.
METRIC_FUNCTIONS = {"mse": mean_squared_error, "r2": r2_score, "explained_variance": explained_variance}


class Regression(L.LightningModule):
    """Fits a plain nn.Module to (x, y) with the primer's loss, the summed squared error.

    Logged under one spelling: `{stage}/loss` (summed squared error of the batch) and the
    torchmetrics `{stage}/mse`, `{stage}/r2`, `{stage}/explained_variance`, for stage in
    train/val/test (r2 and explained variance need two rows: `metrics` leaves them out for
    one-row batches). Training metrics are computed only on logging steps (`is_logging_step`) and
    on the step training stops on (`on_train_epoch_end`), so the other steps cost a forward, a
    backward and an update, nothing more. Under
    Trainer(barebones=True) nothing is logged, as Lightning requires.

    A HandGradientNet is trained in manual-optimization mode with the gradients it derives
    itself; any other net goes through autograd. An optional lr scheduler factory is stepped
    after every training step; or Lightning's lr_scheduler dict, its "scheduler" a factory, where
    the scheduler needs more (ReduceLROnPlateau: a monitor).

    Under DDP each rank holds a slice of the global batch. The loss is a sum over rows, so the
    global gradient is the sum of the ranks' gradients; DDP averages them, so each rank
    backpropagates world_size × its loss, and hand gradients are summed over ranks here. The
    logged losses and metrics are those of the global batch, reduced over ranks on logging
    steps only. N processes on a global batch thus train as one process on that batch.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        input_dim: int,
        scheduler: Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler] | Mapping | None = None,
        metrics: Sequence[str] = METRICS,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.loss_fn = nn.MSELoss(reduction="sum")
        self.automatic_optimization = not isinstance(net, HandGradientNet)
        self.input_dim = input_dim
        # Train metrics are those of one batch (`_batch_metrics`); val/test metrics accumulate over
        # the epoch and sync once, when Lightning computes them at its end.
        self.train_metrics = regression_metrics("train/", metrics)
        self.val_metrics = regression_metrics("val/", metrics)
        self.test_metrics = regression_metrics("test/", metrics)
        self._unlogged: tuple[torch.Tensor, ...] | None = None  # the last step's (loss, y_pred, y), if not logged

    @property
    def example_input_array(self) -> torch.Tensor:
        """For the model summary and the TensorBoard graph, in the dtype the precision (64-true, ...) gave the net."""
        return torch.zeros(1, self.input_dim, dtype=self.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.net.parameters())
        if self.scheduler_factory is None:
            return optimizer
        # stepped after every training step: a run is one long epoch over the same batch
        scheduler = {"interval": "step"}
        if isinstance(self.scheduler_factory, Mapping):  # Lightning's lr_scheduler dict (monitor, interval, ...)
            scheduler.update(self.scheduler_factory)
            scheduler["scheduler"] = self.scheduler_factory["scheduler"](optimizer)
        else:
            scheduler["scheduler"] = self.scheduler_factory(optimizer)
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
            # not prog_bar: Lightning would read a prog_bar value on the host after every step, logging or
            # not; primer's progress (primer.run.console) reads it on logging steps only. logger=False: written
            # to the loggers in on_train_batch_end.
            self.log(loss_name("train"), loss, sync_dist=True, reduce_fx="sum", logger=False)
            self.log_dict(self._batch_metrics(y_pred.detach(), y), logger=False)
        if completes_step(self.trainer, batch_idx):
            # kept, not computed: logged only if training stops on this step (on_train_epoch_end)
            self._unlogged = None if log_now or self.trainer.barebones else (loss.detach(), y_pred.detach(), y)
        world_size = self.trainer.world_size
        # DDP averages gradients over ranks, but the loss sums rows: N ranks must step as one process.
        return loss * world_size if world_size > 1 else loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # The training values are written to the loggers here, on every logging step (is_logging_step: the
        # first, every log_every_n_steps, the last of the run or epoch), so that every curve starts at step 1
        # and ends on the values metrics.json and HPARAMS hold. Lightning would write them every
        # log_every_n_steps steps only, and on a step where a callback set trainer.should_stop, logging step
        # or not: there its values are the last logging step's, a point that never was.
        step = self.global_step
        if not self.trainer.barebones and is_logging_step(self.trainer, step, batch_idx):
            self._write_train_values(step)

    def on_train_epoch_end(self) -> None:
        """Training stopped on a step that was not a logging step (max_time, early stopping, a callback setting
        trainer.should_stop): that step's values are logged now, so that the console, metrics.json and every
        train/* curve end on the step the run ended on, not on the last logging step before it.

        Lightning allows no step-level logging after validation (where EarlyStopping decides), so they are
        logged here with logger=False (into callback_metrics, which metrics.json and HPARAMS read) and written
        to the loggers at the step they belong to. An epoch's last step is a logging step: a run that goes on
        never comes here with values left."""
        if self._unlogged is None:
            return
        loss, y_pred, y = self._unlogged
        self._unlogged = None
        self.log(loss_name("train"), loss, sync_dist=True, reduce_fx="sum", logger=False)
        self.log_dict(self._batch_metrics(y_pred, y), logger=False)
        self._write_train_values(self.global_step)

    def _write_train_values(self, step: int) -> None:
        logged = {k: v for k, v in self.trainer.callback_metrics.items() if k.startswith("train/")}
        for logger in self.loggers:
            logger.log_metrics(logged, step=step - 1)  # Lightning's step numbering: the first step is 0

    def _batch_metrics(self, y_pred: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """The train metrics of this batch; under DDP, of the global batch.

        In one process, torchmetrics' functions: its metric classes' math without a state to reset, update
        and compute. Under DDP the classes' compute syncs the ranks' states (their shards may differ in rows)."""
        if self.trainer.world_size == 1:
            return {name: METRIC_FUNCTIONS[name.removeprefix("train/")](y_pred, y) for name in self.train_metrics}
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
            scheduler.step()  # manual optimization steps its scheduler itself
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
        self.log_dict(metrics)


def is_logging_step(trainer: L.Trainer, step: int, batch_idx: int) -> bool:
    """The one rule for when training metrics are computed and logged: the first step (so curves
    start at step 1), every `log_every_n_steps` (0: none in between), the last step of the run and
    of the epoch. `step` counts optimizer steps from 1: the step this batch completes. Under
    trainer.accumulate_grad_batches only the batch that completes a step logs it, once."""
    every = trainer.log_every_n_steps
    return completes_step(trainer, batch_idx) and (
        step == 1
        or (every > 0 and step % every == 0)
        or step == trainer.max_steps
        or batch_idx + 1 == trainer.num_training_batches
    )


def completes_step(trainer: L.Trainer, batch_idx: int) -> bool:
    """Whether this batch ends an optimizer step: every batch, or under accumulate_grad_batches=N every Nth
    and the epoch's last (Lightning's rule)."""
    return (batch_idx + 1) % trainer.accumulate_grad_batches == 0 or batch_idx + 1 == trainer.num_training_batches


def planned_steps(trainer: L.Trainer) -> int | None:
    """The optimizer steps the run will take: trainer.max_steps, or with max_steps=-1 Lightning's own count of
    max_epochs' steps; None where only max_time (or nothing yet known) ends the run."""
    if trainer.max_steps > 0:
        return trainer.max_steps
    try:
        total = trainer.estimated_stepping_batches
    except Exception:  # before Lightning has the data (a signal during set-up)
        return None
    return int(total) if math.isfinite(total) else None


def regression_metrics(prefix: str, names: Sequence[str] = METRICS, **kwargs) -> MetricCollection:
    """The named metrics (mse, r2, explained_variance), logged as `{prefix}mse` etc.; kwargs go to each."""
    return MetricCollection({name: METRIC_CLASSES[name](**kwargs) for name in names}, prefix=prefix)


def loss_name(stage: str) -> str:
    return f"{stage}/loss"


def logged_in_fit(metrics: Sequence[str] = METRICS) -> list[str]:
    """The names a fit logs, by the same functions its steps log them with: what a callback can monitor."""
    return [name for stage in ("train", "val") for name in (loss_name(stage), *regression_metrics(f"{stage}/", metrics))]
