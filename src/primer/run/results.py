"""What a run leaves behind: metrics.json, run.json, its TensorBoard events and HPARAMS entry."""

import json
import logging
import math
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from primer.run.console import short_path
from primer.run.dashboard import HParamValue, session_end_summary, session_start_summary
from primer.run.files import EVENT_FILES, RUN_RECORDS
from primer.writes import write_atomic

log = logging.getLogger(__name__)


class RunLogger(TensorBoardLogger):
    """TensorBoardLogger without Lightning's `epoch` scalar while it is 0, with `train/log10_loss`, and
    without a flush on every logging step.

    Lightning adds `epoch` to every logged step; a primer run is one epoch over the same batch,
    so it would be a flat 0 and the first card of TIME SERIES. A run that reaches a second
    epoch logs it from then on.

    train/loss falls by up to twelve decades (about 3e7 to 2e-5 for the raw-weight nets), and TensorBoard's
    scalar cards open on a linear axis (log scale is a per-card toggle): `train/log10_loss`,
    log10 of the logged train/loss at the same steps, reads at a glance. TensorBoard only: it is
    a view of train/loss, not a metric of its own (not in metrics.json).

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

    def write_hparams(self) -> None:
        """hparams.yaml anew: Lightning writes it only where there is none, which keeps an earlier run's."""
        Path(self.log_dir, self.NAME_HPARAMS_FILE).unlink(missing_ok=True)
        super().save()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        metrics = dict(metrics)
        if metrics.get("epoch") == 0:
            del metrics["epoch"]
        if (loss := metrics.get("train/loss")) is not None:
            loss = float(loss)
            metrics["train/log10_loss"] = math.log10(loss) if loss > 0 and math.isfinite(loss) else math.nan
        super().log_metrics(metrics, step)


def final_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The last value of every metric the run logged, under its logged name."""
    return {name: float(value) for name, value in sorted(trainer.callback_metrics.items())}


class RunSummary(L.Callback):
    """Writes what a run measured about itself, and its row of TensorBoard's HPARAMS tab.

    - `metrics.json`: the final value of every logged metric, when fitting ends;
    - `run.json`: when the run started and ended, its wall time and steps, taken by the run
      itself (file times change whenever a later tool writes into the run dir), and the inputs
      besides the config that decide its bits: `inputs` (the seed, the cores given and where
      from), the intra-op thread count, the device and the torch version; written when fitting
      ends or stops on an exception;
    - HPARAMS: the hyperparameters when fitting starts, the status (success or failure) when it
      ends. TensorBoard reads each metric's value from the scalars already logged, so the metrics
      are not logged again (that would add a stray point to every curve).

    Runs on rank 0 only.
    """

    def __init__(self, output_dir: str | Path, hparams: dict[str, HParamValue], inputs: dict | None = None):
        self.output_dir = Path(output_dir)
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
        self._write(trainer, session_start_summary(self.hparams, self.start))
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
            if trainer.global_step > self.first_step:  # else a set-up error: no run to describe (ReplaceEarlierRun)
                self._write_run_json(trainer)
            self._write(trainer, session_end_summary("STATUS_FAILURE"))

    def _write_run_json(self, trainer: L.Trainer) -> None:
        run = {"start": datetime.fromtimestamp(self.start).isoformat(timespec="milliseconds"),
               "end": datetime.now().isoformat(timespec="milliseconds"),
               "wall_time_s": round(time.perf_counter() - self._clock, 3),
               "steps": trainer.global_step}
        if self.first_step:
            run["resumed_at_step"] = self.first_step
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


class ReplaceEarlierRun(L.Callback):
    """A run dir holds one run's results, also when Hydra runs into a dir used before (`hydra.run.dir=X` twice).

    Lightning would leave an earlier run's metrics.json or failure.txt beside this run's, keep its hparams.yaml
    and draw both runs' curves as one TensorBoard run. Once this run's first step is done (an error in set-up
    changes nothing there), what the earlier run wrote about itself is removed, and its TensorBoard events too
    unless this run resumes it (`ckpt_path`, or Lightning's own resume of a requeued SLURM job): then the curves
    go on from its last step. Checkpoints stay: this run's replace them as it saves. A sweep job run again is
    cleared before it starts (primer.sweeps.sweep_resume). Rank 0 only.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        # taken before the Trainer exists, so before this run's logger makes its own event file
        self.records = [self.run_dir / name for name in RUN_RECORDS if (self.run_dir / name).is_file()]
        self.events = sorted(self.run_dir.glob(EVENT_FILES))
        self.done = False

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        if self.done:
            return
        self.done = True
        if not trainer.is_global_zero or not (self.records or self.events):
            return
        resumed = trainer.ckpt_path is not None
        for path in self.records + ([] if resumed else self.events):
            path.unlink(missing_ok=True)
        if any(path.name == TensorBoardLogger.NAME_HPARAMS_FILE for path in self.records):
            for logger in trainer.loggers:
                if isinstance(logger, RunLogger) and Path(logger.log_dir).resolve() == self.run_dir.resolve():
                    logger.write_hparams()  # this run's, where Lightning kept the earlier run's
        if not resumed:
            self._say_what_was_removed()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """An error before the first step is done is a set-up error: the dir is left as the earlier run left it."""
        if self.done or not trainer.is_global_zero or not (self.records or self.events):
            return  # a new dir: primer.exits removes it whole
        for path in [self.run_dir / name for name in RUN_RECORDS] + sorted(self.run_dir.glob(EVENT_FILES)):
            if path not in self.records + self.events:
                path.unlink(missing_ok=True)  # this run's

    def _say_what_was_removed(self) -> None:
        removed = [path.name for path in self.records]
        if self.events:
            removed.append(f"{len(self.events)} TensorBoard event file{'s' if len(self.events) > 1 else ''}")
        listed = ", ".join(removed[:-1]) + " and " + removed[-1] if len(removed) > 1 else removed[0]
        log.info(f"{short_path(self.run_dir)} held an earlier run; this run replaces it: removed its {listed} "
                 "(its checkpoints stay until this run saves its own)")
