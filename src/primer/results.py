"""What a finished run leaves behind: metrics.json and the TensorBoard HPARAMS entry."""

import json
import math
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.tensorboard.summary import hparams as hparams_summary

HParamValue = str | bool | int | float


def final_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The last value of every metric the run logged, under its logged name."""
    return {name: float(value) for name, value in sorted(trainer.callback_metrics.items())}


class RunSummary(L.Callback):
    """When fitting ends, writes `metrics.json` and the hyperparameters next to the final metrics.

    TensorBoard's HPARAMS tab reads each metric's latest value from the scalars already
    logged under that tag, so only the hparams summary is written here (logging the metrics
    again would add a stray point to every curve). Runs on rank 0 only.
    """

    def __init__(self, output_dir: str | Path, hparams: dict[str, HParamValue]):
        self.metrics_path = Path(output_dir) / "metrics.json"
        self.hparams = hparams

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        metrics = final_metrics(trainer)
        # JSON has no NaN or Infinity: a diverged run's values are written as strings.
        serializable = {k: v if math.isfinite(v) else str(v) for k, v in metrics.items()}
        self.metrics_path.write_text(json.dumps(serializable, indent=2) + "\n")
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                writer = logger.experiment._get_file_writer()
                for summary in hparams_summary(self.hparams, metrics):
                    writer.add_summary(summary)
                writer.flush()
