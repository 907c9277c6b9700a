"""What a run prints: its progress with the loss, a model summary a person can read, and a last
block that says what came out and where it is."""

import json
import os
import shlex
import sys
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelSummary as LightningModelSummary
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar
from torchmetrics import Metric, MetricCollection

from primer.config import launch_dir
from primer.run.dashboard import FIRST_METRICS
from primer.run.system import is_logging_step, planned_steps


def progress_bar(refresh_rate: int = 50) -> ProgressBar:
    """A live bar on a terminal; one plain line every `refresh_rate` steps where stdout is a file
    or a pipe (a sweep's log, CI, `> log`), where the bar's redraws would pile up as `\\r` walls."""
    if sys.stdout.isatty():
        return LiveBar(refresh_rate=refresh_rate, leave=True)  # leave: Lightning's closing line starts a new line
    return LineProgress(every_n_steps=refresh_rate)


SHOWN = ("train/loss",)  # what the bar and the plain lines show beside the step


def shown_values(trainer: L.Trainer) -> dict[str, float]:
    """SHOWN as numbers. Reading them makes the host wait for the device: call on logging steps only,
    where the logger reads them too (values are not logged with prog_bar, which Lightning reads every step)."""
    return {k: float(v) for k, v in trainer.callback_metrics.items() if k in SHOWN}


class LiveBar(TQDMProgressBar):
    """Lightning's tqdm bar, showing the loss read on the last logging step, that ends its line when
    training stops on an exception, so that the one-line reason (diverged, interrupted) starts on a
    fresh line next to the step it stopped at."""

    _batches = 0
    _shown: dict[str, float] = {}

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        self._batches = batch_idx + 1
        if self.is_enabled and is_logging_step(trainer, trainer.global_step, batch_idx):
            self._shown = shown_values(trainer)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        return {**super().get_metrics(trainer, pl_module), **self._shown}

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        for bar in (self._val_progress_bar, self._train_progress_bar):
            if bar is not None and not bar.disable:
                if bar is self._train_progress_bar:
                    bar.n = self._batches  # the bar redraws every refresh_rate steps: show where it stopped
                bar.close()


class LineProgress(ProgressBar):
    """One line per `every_n_steps` training steps, rounded up to a multiple of the logging
    interval, and at step 1 and the last step: `step 50/500  train/loss 3.094e+02`.

    The loss is computed on logging steps only (primer.run.system): lines fall on those steps, so
    printing costs no extra host sync (`shown_values`).
    """

    def __init__(self, every_n_steps: int = 50):
        super().__init__()
        self.every_n_steps = every_n_steps
        self._enabled = True
        self._total: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._total = planned_steps(trainer)

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        step, n = trainer.global_step, max(trainer.log_every_n_steps, 1)
        every = -(-max(self.every_n_steps, 1) // n) * n
        if not (self._enabled and trainer.is_global_zero and is_logging_step(trainer, step, batch_idx)):
            return  # the loss is fresh on logging steps only
        if not (step == 1 or step % every == 0 or step == self._total):
            return
        metrics = shown_values(trainer)
        if metrics:  # none yet where step 1 is not a logging step
            values = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            print(f"step {step}{f'/{self._total}' if self._total else ''}  {values}", flush=True)


class ModelSummary(LightningModelSummary):
    """Lightning's plain-text model summary, with or without `rich` (whose 80-column table cuts
    class names), less the rows of metric collections: they hold no parameters and say nothing."""

    def _summary(self, trainer: L.Trainer, pl_module: L.LightningModule):
        self._hidden = {name for name, m in pl_module.named_children() if isinstance(m, (Metric, MetricCollection))}
        return super()._summary(trainer, pl_module)

    def summarize(self, summary_data: list[tuple[str, list[str]]], *args, **kwargs) -> None:
        names = dict(summary_data)["Name"]
        keep = [i for i, name in enumerate(names) if name.split(".")[0] not in self._hidden]
        super().summarize([(title, [column[i] for i in keep]) for title, column in summary_data], *args, **kwargs)


def final_block(run_dir: str | Path, event_dir: str | Path | None = None) -> str:
    """The last lines of a run: steps and wall time, what stopped it early if anything did (run.json's
    `stopped_by`), final losses, the run dir and the TensorBoard command for where its events are (the
    sweep dir for a sweep's job; none without a TensorBoard logger), from what the run wrote
    (primer.run.results)."""
    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    run = json.loads((run_dir / "run.json").read_text())
    resumed = f" (resumed at step {run['resumed_at_step']})" if "resumed_at_step" in run else ""
    lines = [f"done: {run['steps']} step{'' if run['steps'] == 1 else 's'}{resumed} in {run['wall_time_s']:.1f} s"]
    if "stopped_by" in run:  # before its planned end: max_time, early stopping, a callback
        lines.append(f"  {'stopped by':<11} {run['stopped_by']}")
    lines += [f"  {name:<11} {float(metrics[name]):.4g}" for name in FIRST_METRICS if name in metrics]
    lines.append(f"  {'run dir':<11} {short_path(run_dir)}")
    if event_dir is not None:
        event_dir = Path(event_dir)
        in_a_sweep = (event_dir.parent / "multirun.yaml").exists()  # Hydra's file in the sweep dir
        lines.append(f"  tensorboard --logdir {shlex.quote(short_path(event_dir.parent if in_a_sweep else event_dir))}")
    return "\n".join(lines)


def short_path(path: Path) -> str:
    """Relative to the dir the command was started in where the path is under it, as a person would type it."""
    relative = os.path.relpath(path, launch_dir())
    return str(path) if relative.startswith("..") else relative


def tensorboard_dir(trainer: L.Trainer) -> str | None:
    """Where the run's TensorBoard events are, for the closing block's `tensorboard --logdir` line."""
    from lightning.pytorch.loggers import TensorBoardLogger

    return next((lg.log_dir for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
