"""Lines from other libraries that a primer user can do nothing about, and Hydra's log file."""

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
    # torch's deprecation of a call inside Lightning
    warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # primer logs the last step whatever the interval (primer.run.system.is_logging_step), so a short run loses nothing.
    warnings.filterwarnings("ignore", r"The number of training batches \(\d+\) is smaller than the logging interval")


@contextlib.contextmanager
def own_checkpoints_dir_reused(run_dir: str | Path):
    """Drops Lightning's "Checkpoint directory ... exists and is not empty" for this run's own `checkpoints/`: a run
    into a used dir keeps the earlier run's checkpoints until it saves its own, and primer.run.run_dir says so."""
    own = os.path.realpath(Path(run_dir) / "checkpoints")  # ModelCheckpoint names its dir by its real path
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", re.escape(f"Checkpoint directory {own} exists and is not empty.") + r"\Z")
        yield


class NoNotices(logging.Filter):
    """A filter of the log's handlers (conf/hydra/job_logging/primer.yaml) that drops Lightning's advert for its
    cloud logger, its note that the configured model summary replaces its own, and its "Received SIGTERM", which
    it says for a Ctrl-C too: primer's own last line names the signal."""

    def filter(self, record: logging.LogRecord) -> bool:
        notices = ("litlogger", "Skipping setting a default `ModelSummary`", "Received SIGTERM")
        return not any(notice in record.getMessage() for notice in notices)


def set_up_lines(record: logging.LogRecord) -> bool:
    """False for Lightning's set-up lines (the seed, the devices, the model summary): a filter for a console that
    shows progress and results only (primer.api); train.log keeps them."""
    lines = ("Seed set to", "GPU available", "TPU available", "HPU available", "Total params")
    return not any(line in record.getMessage() for line in lines)


class LogFile(logging.FileHandler):
    """Hydra's log file, less a traceback for each line a full disk or a read-only dir keeps out of it: the
    command ends with one line naming the fault (primer.exits)."""

    def handleError(self, record: logging.LogRecord) -> None:
        import sys

        from primer.exits import environment_fault

        if environment_fault(sys.exc_info()[1]) is None:
            super().handleError(record)
