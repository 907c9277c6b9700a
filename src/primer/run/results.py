"""What a run leaves behind: metrics.json, run.json, its TensorBoard events and HPARAMS entry."""

import json
import math
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from primer.run.dashboard import LOG10_LOSS, HParamValue, session_end_summary, session_start_summary
from primer.run.stops import stopped_by
from primer.writes import write_atomic


class RunLogger(TensorBoardLogger):
    """TensorBoardLogger without Lightning's `epoch` scalar while it is 0, with `log10_loss/train` and
    `log10_loss/val`, and without a flush on every logging step.

    Lightning adds `epoch` to every logged step; a primer run is one epoch over the same batch,
    so it would be a flat 0 and the first card of TIME SERIES. A run that reaches a second
    epoch logs it from then on.

    train/loss falls by up to twelve decades (about 3e7 to 2e-5 for the raw-weight nets), and TensorBoard's
    scalar cards open on a linear axis (log scale is a per-card toggle): `log10_loss/train`, log10 of
    the logged train/loss at the same steps (and `log10_loss/val` of val/loss), reads at a glance, and its
    group sorts before `lr-*`, `train/` and `val/`, whose cards TensorBoard lists alphabetically: the
    readable cards open first. TensorBoard only: views of the losses, not metrics of their own (not in
    metrics.json).

    Lightning calls `save` after every logging step, and its flush would make training wait until
    the writer's thread has put everything on disk. The writer flushes on its own every `flush_secs`
    (what a live TensorBoard lags by) and when the run ends or fails (`finalize`).
    """

    def __init__(self, *args, flush_secs: float = 5, **kwargs):
        super().__init__(*args, flush_secs=flush_secs, **kwargs)
        self._saved = False

    def save(self) -> None:
        if not self._saved:  # the first, at the start of fit: writes hparams.yaml, as Lightning's save does once
            super().save()
            self._saved = True

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        metrics = dict(metrics)
        if metrics.get("epoch") == 0:
            del metrics["epoch"]
        for name, view in LOG10_LOSS.items():
            if (loss := metrics.get(name)) is not None:
                loss = float(loss)
                metrics[view] = math.log10(loss) if loss > 0 and math.isfinite(loss) else math.nan
        super().log_metrics(metrics, step)


def final_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The last value of every metric the run logged, under its logged name."""
    return {name: float(value) for name, value in sorted(trainer.callback_metrics.items())}


class RunSummary(L.Callback):
    """Writes what a run measured about itself, and its row of TensorBoard's HPARAMS tab.

    - `metrics.json`: the final value of every logged metric, when fitting ends;
    - `run.json`: when the run started and ended, its wall time and steps, taken by the run
      itself (file times change whenever a later tool writes into the run dir), `stopped_by` where
      training stopped before its planned end (primer.run.stops), and the inputs
      besides the config that decide its bits: `inputs` (the seed, the cores given and where
      from), the intra-op thread count, the device and the torch version; written when fitting
      ends or stops on an exception;
    - HPARAMS: the hyperparameters when fitting starts, the status (success or failure) when it
      ends. TensorBoard reads each metric's value from the scalars already logged, so the metrics
      are not logged again (that would add a stray point to every curve).

    Runs on rank 0 only.
    """

    def __init__(self, output_dir: str | Path, hparams: dict[str, HParamValue], inputs: dict | None = None,
                 trial: str = ""):
        self.output_dir = Path(output_dir)
        self.trial = trial  # HPARAMS' Trial ID; "": the run's name
        self.inputs = inputs or {}
        self.hparams = hparams
        self.start = self._clock = 0.0
        self.first_step = 0  # the step a resume starts from; 0 for a fresh run
        self._session_started = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.start, self._clock = time.time(), time.perf_counter()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            logger.log_hyperparams(self.hparams)  # so its hparams.yaml holds the run's config too
        self._write(trainer, session_start_summary(self.hparams, self.start, self.trial))
        self._session_started = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.first_step = trainer.global_step  # restored by now, on a resume

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        metrics = final_metrics(trainer)
        # JSON has no NaN or Infinity: a diverged run's values are written as strings.
        serializable = {k: v if math.isfinite(v) else str(v) for k, v in metrics.items()}
        write_atomic(self.output_dir / "metrics.json", json.dumps(serializable, indent=2) + "\n")
        self._write_run_json(trainer)
        self._write(trainer, session_end_summary("STATUS_SUCCESS"))

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if trainer.is_global_zero and self._session_started:
            if trainer.global_step > self.first_step:  # else a set-up error: the run dir is given back (run_dir)
                self._write_run_json(trainer)
            self._write(trainer, session_end_summary("STATUS_FAILURE"))

    def _write_run_json(self, trainer: L.Trainer) -> None:
        run = {"start": datetime.fromtimestamp(self.start).isoformat(timespec="milliseconds"),
               "end": datetime.now().isoformat(timespec="milliseconds"),
               "wall_time_s": round(time.perf_counter() - self._clock, 3),
               "steps": trainer.global_step}
        if self.first_step:
            run["resumed_at_step"] = self.first_step
        if reason := stopped_by(trainer):
            run["stopped_by"] = reason
        run |= {**self.inputs, "intra_op_threads": torch.get_num_threads(),
                "device": str(trainer.strategy.root_device), "torch": torch.__version__}
        write_atomic(self.output_dir / "run.json", json.dumps(run, indent=2) + "\n")

    @staticmethod
    def _write(trainer: L.Trainer, *summaries) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                writer = logger.experiment._get_file_writer()
                for summary in summaries:
                    writer.add_summary(summary)
                writer.flush()
