"""The experiment trackers besides TensorBoard, as primer runs them (conf/logger/mlflow.yaml, wandb.yaml)."""

import contextlib
import os
from pathlib import Path

from lightning.pytorch.loggers import MLFlowLogger, WandbLogger


class MLflowRun(MLFlowLogger):
    """MLFlowLogger whose first use of a SQLite store is one process at a time, and whose store's path is
    read from the dir the run starts in.

    The jobs of a parallel sweep (hydra/launcher=joblib) start together: each would create the store's
    tables (when its client is made) or the sweep's experiment (at its first log) at once, and all but
    one would fail. A lock beside the store's file serializes both; logging itself needs no lock.
    mlflow keeps one store per URI for the process: a relative `sqlite:///outputs/mlflow.db` would stay
    in the dir of the process's first run, so it is made absolute first.

    Nothing leaves the machine for a local store: mlflow's usage telemetry, which `import mlflow` starts
    (a thread that asks mlflow's servers for its settings), is off unless MLFLOW_DISABLE_TELEMETRY says
    otherwise.
    """

    def __init__(self, *args, tracking_uri: str | None = os.getenv("MLFLOW_TRACKING_URI"), **kwargs):
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # read when mlflow is imported, just below
        self._joined = False
        tracking_uri = self._absolute(tracking_uri)
        with self._first_use(tracking_uri):
            super().__init__(*args, tracking_uri=tracking_uri, **kwargs)

    @property
    def experiment(self):
        if self._joined:
            return super().experiment
        with self._first_use(self._tracking_uri):
            client = super().experiment  # finds or creates the experiment, then creates this run
        self._joined = True
        return client

    @staticmethod
    def _absolute(tracking_uri: str | None) -> str | None:
        database = _sqlite_file(tracking_uri)
        return f"sqlite:///{Path(database).absolute()}" if database else tracking_uri

    @staticmethod
    def _first_use(tracking_uri: str | None):
        from filelock import FileLock

        if not (database := _sqlite_file(tracking_uri)):
            return contextlib.nullcontext()  # a server serializes its own writes
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        return FileLock(f"{database}.lock")


def _sqlite_file(tracking_uri: str | None) -> str | None:
    """The database file of a `sqlite:///PATH` store; None for any other store."""
    from sqlalchemy.engine import make_url

    if not str(tracking_uri).startswith("sqlite:"):
        return None
    database = make_url(tracking_uri).database
    return None if database in (None, "", ":memory:") else database


class WandbRun(WandbLogger):
    """WandbLogger whose W&B run ends when the training does.

    Lightning's leaves its W&B run open until the process exits, and a WandbLogger made while a run is
    open logs into that run: the jobs of a sweep in one process, or two trainings in one notebook, would
    all be one W&B run. Ending it here makes every training a run of its own.

    Offline, nothing leaves the machine: W&B's reports of its own errors are off too, unless
    WANDB_ERROR_REPORTING says otherwise.
    """

    def __init__(self, *args, offline: bool = False, **kwargs):
        if offline:
            os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
        super().__init__(*args, offline=offline, **kwargs)

    def finalize(self, status: str) -> None:
        super().finalize(status)  # on success, the checkpoints as artifacts where log_model is set
        if self._experiment is not None:
            self._experiment.finish(exit_code=0 if status in ("success", "finished") else 1)
