"""What a run prints: its progress with the loss, a model summary, and a closing block of what came out where."""

import contextlib
import json
import logging
import os
import shlex
import sys
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelSummary as LightningModelSummary
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger

from primer.config import launch_dir
from primer.run.dashboard import KEY_METRICS, TRAIN_LOSS
from primer.run.files import METRICS_FILE, RUN_FILE
from primer.run.system import is_logging_step, planned_steps


def progress_bar(refresh_rate: int = 50) -> ProgressBar:
    """A live bar on a terminal; a plain line every `refresh_rate` steps into a file or pipe (no `\\r` walls)."""
    if sys.stdout.isatty():
        return LiveBar(refresh_rate=refresh_rate, leave=True)  # leave: Lightning's closing line starts a new line
    return LineProgress(every_n_steps=refresh_rate)


def shown_values(trainer: L.Trainer) -> dict[str, float]:
    """The loss: the host waits for the device, so read it on logging steps only, as the logger does."""
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k == TRAIN_LOSS}


class LiveBar(TQDMProgressBar):
    """Lightning's tqdm bar with the last logging step's loss; an exception ends its line at the step it stopped."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches = 0
        self.shown: dict[str, float] = {}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        self.batches = batch_idx + 1
        if self.is_enabled and is_logging_step(trainer, trainer.global_step, batch_idx):
            self.shown = shown_values(trainer)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        return {**super().get_metrics(trainer, pl_module), **self.shown}

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        with contextlib.suppress(TypeError):  # never made; a closed or disabled bar's close does nothing
            self.val_progress_bar.close()
        with contextlib.suppress(TypeError):
            self.train_progress_bar.n = self.batches  # it redraws every refresh_rate steps: show where it stopped
            self.train_progress_bar.close()


class LineProgress(ProgressBar):
    """`step 50/500  train/loss 309.4` at step 1, the last and every `every_n_steps` (rounded up to a logging step)."""

    def __init__(self, every_n_steps: int = 50):
        super().__init__()
        self.every_n_steps = every_n_steps
        self.enabled = True
        self.total: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.total = planned_steps(trainer)

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        step, n = trainer.global_step, max(trainer.log_every_n_steps, 1)
        every = -(-max(self.every_n_steps, 1) // n) * n
        if not (self.enabled and trainer.is_global_zero and is_logging_step(trainer, step, batch_idx)):
            return
        if (step == 1 or step % every == 0 or step == self.total) and (metrics := shown_values(trainer)):
            values = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            print(f"step {step}{f'/{self.total}' if self.total else ''}  {values}", flush=True)


class ModelSummary(LightningModelSummary):
    """Plain text (rich's table cuts class names), less the metric collections' rows."""

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], *args, **kwargs) -> None:
        columns = dict(summary_data)
        hidden = {name for name, kind in zip(columns["Name"], columns["Type"]) if kind == "MetricCollection"}
        keep = [i for i, name in enumerate(columns["Name"]) if name.split(".")[0] not in hidden]
        summary_data = [(title, [column[i] for i in keep]) for title, column in summary_data]
        LightningModelSummary.summarize(summary_data, *args, **kwargs)


def final_block(run_dir: str | Path, event_dir: str | Path | None = None) -> str:
    """A run's last lines, from its files: steps, time, what stopped it, key metrics, run dir, `tensorboard` command."""
    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / METRICS_FILE).read_text())
    run = json.loads((run_dir / RUN_FILE).read_text())
    resumed = f" (resumed at step {run['resumed_at_step']})" if "resumed_at_step" in run else ""
    lines = [f"done: {run['steps']} step{'' if run['steps'] == 1 else 's'}{resumed} in {run['wall_time_s']:.1f} s"]
    if "stopped_by" in run:
        lines.append(f"  {'stopped by':<11} {run['stopped_by']}")
    lines += [f"  {name:<11} {float(metrics[name]):.4g}" for name in KEY_METRICS if name in metrics]
    lines.append(f"  {'run dir':<11} {short_path(run_dir)}")
    if event_dir is not None:
        event_dir = Path(event_dir)
        in_a_sweep = (event_dir.parent / "multirun.yaml").exists()  # Hydra's file in the sweep dir
        lines.append(f"  tensorboard --logdir {shlex.quote(short_path(event_dir.parent if in_a_sweep else event_dir))}")
    return "\n".join(lines)


def short_path(path: Path) -> str:
    """Relative to the launch dir, where the path is under it."""
    relative = os.path.relpath(path, launch_dir())
    return str(path) if relative.startswith("..") else relative


@contextlib.contextmanager
def filtered(keep, handlers: list[logging.Handler]):
    """Only the records `keep` passes reach `handlers` while the block runs."""
    for handler in handlers:
        handler.addFilter(keep)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(keep)


def tensorboard_dir(trainer: L.Trainer) -> str | None:
    return next((lg.log_dir for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
