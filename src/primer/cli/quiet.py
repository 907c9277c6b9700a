"""Lines from other libraries that a primer user can do nothing about, filtered once per process."""

import contextlib
import logging
import os
import re
import warnings
from pathlib import Path


def quiet_third_party() -> None:
    # Every batch is the same batch (primer.run.data.RepeatedBatch): a resume mid-epoch is exact.
    warnings.filterwarnings("ignore", "You're resuming from a checkpoint that ended before the epoch ended")
    # A resume writes into a run dir of its own by design: the bookkeeping of the dir it resumes from is not needed.
    warnings.filterwarnings("ignore", r"The dirpath has changed from .* won't be reloaded")
    # torch's deprecation of a call inside Lightning, and Lightning's advertisement for its cloud logger.
    warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # primer logs the last step whatever the interval (primer.run.system.is_logging_step), so a short run loses nothing.
    warnings.filterwarnings("ignore", r"The number of training batches \(\d+\) is smaller than the logging interval")
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if no_litlogger_advert not in rank_zero.filters:
        rank_zero.addFilter(no_litlogger_advert)
    # Lightning says "Received SIGTERM: 2" for a Ctrl-C too (primer routes SIGINT to its SIGTERM stop);
    # primer's own last line names the signal, the step and the resume command.
    signals = logging.getLogger("lightning.pytorch.trainer.connectors.signal_connector")
    if no_sigterm_notice not in signals.filters:
        signals.addFilter(no_sigterm_notice)


@contextlib.contextmanager
def own_checkpoints_dir_reused(run_dir: str | Path):
    """Drops Lightning's "Checkpoint directory ... exists and is not empty" for this run's own
    `checkpoints/`: a run into a used dir keeps the earlier run's checkpoints there until it saves its own,
    by design, and primer's own line says so (primer.run.run_dir). A `callbacks.model_checkpoint.dirpath`
    elsewhere keeps the warning."""
    own = os.path.realpath(Path(run_dir) / "checkpoints")  # ModelCheckpoint names its dir by its real path
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", re.escape(f"Checkpoint directory {own} exists and is not empty.") + r"\Z")
        yield


def no_sigterm_notice(record: logging.LogRecord) -> bool:
    return "Received SIGTERM" not in record.getMessage()


def no_litlogger_advert(record: logging.LogRecord) -> bool:
    """Drops the litlogger advert, and Lightning's note that the configured model summary replaces its own."""
    message = record.getMessage()
    return "litlogger" not in message and "Skipping setting a default `ModelSummary`" not in message


def set_up_lines(record: logging.LogRecord) -> bool:
    """False for Lightning's set-up lines (the seed, the devices it found, the model summary): a filter for a
    console that shows a run's progress and results only; train.log keeps them (primer.api)."""
    if record.name in ("lightning.fabric.utilities.seed", "lightning.pytorch.callbacks.model_summary"):
        return False
    return not record.getMessage().startswith(("GPU available", "TPU available", "HPU available"))


class LogFile(logging.FileHandler):
    """Hydra's log file (`<run dir>/<job>.log`), less a traceback for each line a full disk or a read-only
    dir keeps out of it: the command ends with one line naming the fault (primer.exits)."""

    def handleError(self, record: logging.LogRecord) -> None:
        import sys

        from primer.exits import environment_fault

        if environment_fault(sys.exc_info()[1]) is None:
            super().handleError(record)
