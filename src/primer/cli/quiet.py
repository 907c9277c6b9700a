"""Lines from other libraries that a primer user can do nothing about, and Hydra's log file."""

import contextlib
import logging
import os
import re
import warnings
from pathlib import Path


def quiet_third_party() -> None:
    for message in (
            "You're resuming from a checkpoint that ended before the epoch ended",  # every batch is the same batch
            r"The dirpath has changed from .* won't be reloaded",  # a resume writes into a run dir of its own
            r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # torch's deprecation of a call inside Lightning
            # primer logs the last step whatever the interval (primer.run.system.is_logging_step)
            r"The number of training batches \(\d+\) is smaller than the logging interval"):
        warnings.filterwarnings("ignore", message)


@contextlib.contextmanager
def own_checkpoints_dir_reused(run_dir: str | Path):
    """Drops Lightning's "Checkpoint directory ... exists and is not empty" for the run's own (run_dir says it)."""
    own = os.path.realpath(Path(run_dir) / "checkpoints")  # ModelCheckpoint names its dir by its real path
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", re.escape(f"Checkpoint directory {own} exists and is not empty.") + r"\Z")
        yield


def without(phrases: list[str]):
    """A log filter (logging takes a function): drops the lines holding any of `phrases` (conf/hydra/job_logging)."""
    return lambda record: not any(phrase in record.getMessage() for phrase in phrases)


# Lightning's set-up lines (the seed, the devices, the model summary), off a console that shows progress and results
set_up_lines = without(["Seed set to", "GPU available", "TPU available", "HPU available", "Total params"])


class LogFile(logging.FileHandler):
    """Hydra's log file, less a traceback for each line a full disk or a read-only dir keeps out of it: the
    command ends with one line naming the fault (primer.exits)."""

    def handleError(self, record: logging.LogRecord) -> None:
        import sys

        from primer.exits import environment_fault

        if environment_fault(sys.exc_info()[1]) is None:
            super().handleError(record)
