"""What a run leaves behind: metrics.json, run.json, its TensorBoard events and HPARAMS row."""

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
from primer.run.files import METRICS_FILE, RUN_FILE
from primer.run.stops import stopped_by
from primer.writes import write_atomic


class RunLogger(TensorBoardLogger):
    """With `log10_loss/*` cards (the loss falls by up to twelve decades), no flat `epoch` card while it is 0, and
    no flush on every logging step (it flushes every `flush_secs`)."""

    def __init__(self, *args, flush_secs: float = 5, **kwargs):
        super().__init__(*args, flush_secs=flush_secs, **kwargs)
        self.saved = False

    def save(self) -> None:
        if not self.saved:  # the first, as fitting starts, writes hparams.yaml
            super().save()
            self.saved = True

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        metrics = {k: v for k, v in metrics.items() if not (k == "epoch" and v == 0)}
        for name, view in LOG10_LOSS.items():
            if (loss := metrics.get(name)) is not None:
                metrics[view] = math.log10(loss) if 0 < float(loss) < math.inf else math.nan
        super().log_metrics(metrics, step)


def final_metrics(trainer: L.Trainer) -> dict[str, float]:
    return {name: float(value) for name, value in sorted(trainer.callback_metrics.items())}


class RunSummary(L.Callback):
    """Rank 0 writes metrics.json and run.json (times, steps, `stopped_by`, what besides the config decides its
    bits) as fitting ends, run.json also on a failure after a step; and the HPARAMS session."""

    def __init__(self, output_dir: str | Path, hparams: dict[str, HParamValue], inputs: dict | None = None,
                 trial: str = ""):
        self.output_dir = Path(output_dir)
        self.trial = trial  # HPARAMS' Trial ID; "": the run's name
        self.inputs = inputs or {}
        self.hparams = hparams
        self.start = self.clock = 0.0
        self.first_step = 0  # the step a resume starts from; 0 for a fresh run
        self.session_started = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.start, self.clock = time.time(), time.perf_counter()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_hyperparams(self.hparams)  # so its hparams.yaml holds the run's config too
            self._write(trainer, session_start_summary(self.hparams, self.start, self.trial))
            self.session_started = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.first_step = trainer.global_step  # restored by now, on a resume

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            # JSON has no NaN or Infinity: a diverged run's values are written as strings
            metrics = {k: v if math.isfinite(v) else str(v) for k, v in final_metrics(trainer).items()}
            write_atomic(self.output_dir / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
            self._write_run_json(trainer)
            self._write(trainer, session_end_summary("STATUS_SUCCESS"))

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if trainer.is_global_zero and self.session_started:
            if trainer.global_step > self.first_step:  # else a set-up error: the run dir is given back (run_dir)
                self._write_run_json(trainer)
            self._write(trainer, session_end_summary("STATUS_FAILURE"))

    def _write_run_json(self, trainer: L.Trainer) -> None:
        run = {"start": datetime.fromtimestamp(self.start).isoformat(timespec="milliseconds"),
               "end": datetime.now().isoformat(timespec="milliseconds"),
               "wall_time_s": round(time.perf_counter() - self.clock, 3),
               "steps": trainer.global_step}
        if self.first_step:
            run["resumed_at_step"] = self.first_step
        if reason := stopped_by(trainer):
            run["stopped_by"] = reason
        run |= {**self.inputs, "intra_op_threads": torch.get_num_threads(),
                "device": str(trainer.strategy.root_device), "torch": torch.__version__}
        write_atomic(self.output_dir / RUN_FILE, json.dumps(run, indent=2) + "\n")

    @staticmethod
    def _write(trainer: L.Trainer, summary) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.file_writer.add_summary(summary)  # as SummaryWriter.add_hparams writes them
                logger.experiment.flush()
