"""The experiment trackers besides TensorBoard, as primer runs them (conf/logger/mlflow.yaml, wandb.yaml)."""

import contextlib
import os
from pathlib import Path

from lightning.pytorch.loggers import MLFlowLogger, WandbLogger


class MLflowRun(MLFlowLogger):
    """A SQLite store's path is read from the launch dir (mlflow keeps one store per URI), first used one process
    at a time (a parallel sweep's jobs would create its tables at once); telemetry off by default."""

    def __init__(self, *args, tracking_uri: str | None = os.getenv("MLFLOW_TRACKING_URI"), **kwargs):
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # read when mlflow is imported, just below
        database = _sqlite_file(tracking_uri)
        self.store_uri = f"sqlite:///{Path(database).absolute()}" if database else tracking_uri
        self.joined = False
        with self._first_use():
            super().__init__(*args, tracking_uri=self.store_uri, **kwargs)

    @property
    def experiment(self):
        with contextlib.nullcontext() if self.joined else self._first_use():
            client = super().experiment  # the first finds or creates the experiment, then creates this run
        self.joined = True
        return client

    def _first_use(self):
        from filelock import FileLock

        if not (database := _sqlite_file(self.store_uri)):
            return contextlib.nullcontext()  # a server serializes its own writes
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        return FileLock(f"{database}.lock")


def _sqlite_file(tracking_uri: str | None) -> str | None:
    from sqlalchemy.engine import make_url

    if not str(tracking_uri).startswith("sqlite:"):
        return None
    database = make_url(tracking_uri).database
    return None if database in (None, "", ":memory:") else database


class WandbRun(WandbLogger):
    """Each training (a sweep's job, a notebook's second) is a W&B run of its own; offline, no error reports."""

    def __init__(self, *args, offline: bool = False, **kwargs):
        if offline:
            os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
        super().__init__(*args, offline=offline, **kwargs)

    def finalize(self, status: str) -> None:
        import wandb

        super().finalize(status)  # on success, the checkpoints as artifacts where log_model is set
        wandb.finish(exit_code=0 if status in ("success", "finished") else 1)  # the run this logger logs into, if any
