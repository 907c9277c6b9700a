"""The Lightning system: trains any of the primer's nets on (x, y) batches."""

from collections.abc import Callable

import lightning as L
import torch
from torch import nn
from torchmetrics import ExplainedVariance, MeanSquaredError, MetricCollection, R2Score
from torchmetrics.functional import explained_variance, mean_squared_error, r2_score

from primer.nets import HandGradientNet

# Training metrics are logged per step, of that step's batch, so they need no state: the functional
# forms skip the stateful Metric's copy/reset of its states on each call (the largest cost of a logging step).
BATCH_METRICS = {"mse": mean_squared_error, "r2": r2_score, "explained_variance": explained_variance}


class Regression(L.LightningModule):
    """Fits a plain nn.Module to (x, y) with the primer's loss, the summed squared error.

    Logged under one spelling: `{stage}/loss` (summed squared error of the batch) and the
    torchmetrics `{stage}/mse`, `{stage}/r2`, `{stage}/explained_variance`, for stage in
    train/val/test. Training metrics are computed only on the steps the logger writes
    (every `log_every_n_steps` and the last), so the other steps cost a forward,
    a backward and an update, nothing more.

    A HandGradientNet is trained in manual-optimization mode with the gradients it derives
    itself; any other net goes through autograd.
    """

    def __init__(self, net: nn.Module, optimizer: Callable[..., torch.optim.Optimizer], input_dim: int):
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer"])
        self.net = net
        self.optimizer_factory = optimizer
        self.loss_fn = nn.MSELoss(reduction="sum")
        self.automatic_optimization = not isinstance(net, HandGradientNet)
        self.example_input_array = torch.zeros(1, input_dim)  # for the model summary and TensorBoard graph
        metrics = MetricCollection(
            {"mse": MeanSquaredError(), "r2": R2Score(), "explained_variance": ExplainedVariance()}
        )
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.net.parameters())

    def training_step(self, batch, batch_idx: int):
        x, y = batch
        log_now = self._is_logging_step(batch_idx)  # before a manual step moves global_step
        if self.automatic_optimization:
            y_pred = self.net(x)
            loss = self.loss_fn(y_pred, y)
        else:
            y_pred, loss = self._hand_gradient_step(x, y)
        if log_now:
            self.log("train/loss", loss)
            self.log_dict({f"train/{name}": metric(y_pred.detach(), y) for name, metric in BATCH_METRICS.items()})
        return loss

    def _hand_gradient_step(self, x: torch.Tensor, y: torch.Tensor):
        y_pred, loss, grads = self.net.loss_and_gradients(x, y)
        for param, grad in zip(self.net.parameters(), grads):
            param.grad = grad
        optimizer = self.optimizers()
        optimizer.step()  # through Lightning's wrapper, so global_step advances
        optimizer.zero_grad()
        return y_pred, loss

    def _is_logging_step(self, batch_idx: int) -> bool:
        trainer = self.trainer
        step = self.global_step + 1  # the step this batch completes
        return (
            step % trainer.log_every_n_steps == 0
            or step == trainer.max_steps
            or batch_idx + 1 == trainer.num_training_batches
        )

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def _evaluate(self, batch, stage: str, metrics: MetricCollection) -> None:
        x, y = batch
        y_pred = self.net(x)
        self.log(f"{stage}/loss", self.loss_fn(y_pred, y))
        metrics.update(y_pred, y)
        self.log_dict(metrics)
