"""Test-only Lightning callbacks, added to a run with `+callbacks.NAME._target_=tests.callbacks.CLASS`.

A command-line run imports them because run_cli puts the repo root on its PYTHONPATH (conftest.cli_env).
"""

import json
import sys
import time

import lightning as L
from lightning.pytorch.callbacks import Timer

REACHED = "test-marker: reached step"


class HoldAtStep(L.Callback):
    """At the end of step `step`: prints `REACHED step` to stderr, then holds training there until a
    signal arrives, so that a test's signal lands at a known step, however slow the machine.

    Holding is waiting for the run's own handler (SaveOnInterrupt, then Lightning's) to set
    trainer.received_sigterm; `timeout_s` only bounds a test whose signal never comes.
    """

    def __init__(self, step: int, timeout_s: float = 120, once: str | None = None):
        self.step = step
        self.timeout_s = timeout_s
        self.once = once  # a file: held once, by the run that makes it (a job that starts afresh holds no more)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step != self.step:  # a resumed run starts past it and never holds
            return
        if self.once is not None:
            try:
                open(self.once, "x").close()
            except FileExistsError:
                return
        print(f"{REACHED} {self.step}", file=sys.__stderr__, flush=True)  # a sweep job's stderr is its log
        deadline = time.monotonic() + self.timeout_s
        while not trainer.received_sigterm:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no signal came within {self.timeout_s} s of step {self.step}")
            time.sleep(0.01)  # Python runs a signal's handler in this thread, between these sleeps


class RecordDevices(L.Callback):
    """Writes, to the JSON file `path` when training ends, where every training step found its batch and
    the module: [{"x": "cuda:0", "y": "cuda:0", "module": "cuda:0", "x_ptr": 1234}, ...]."""

    def __init__(self, path: str):
        self.path = path
        self.steps: list[dict] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        x, y = batch
        self.steps.append({"x": str(x.device), "y": str(y.device), "module": str(pl_module.device),
                           "x_ptr": x.data_ptr()})  # the same pointer every step: no copy per step

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with open(self.path, "w") as f:
            json.dump(self.steps, f)


SETTING_UP = "test-marker: setting up"


class HoldInSetup(L.Callback):
    """Prints `SETTING_UP` to stderr as fit sets up (before any training step), then holds there,
    so that a test's Ctrl-C lands while the run is still being set up. The signal's handler ends the
    hold by raising; `timeout_s` only bounds a test whose signal never comes."""

    def __init__(self, timeout_s: float = 120):
        self.timeout_s = timeout_s

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        print(SETTING_UP, file=sys.stderr, flush=True)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            time.sleep(0.01)
        raise RuntimeError(f"no signal came within {self.timeout_s} s of set-up")


class StopAtStep(L.Callback):
    """Sets trainer.should_stop at the end of step `step`: a callback ending the run early."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            trainer.should_stop = True


class TimeRunsOutAtStep(L.Callback):
    """At the end of step `step`, the run's Timer (trainer.max_time) is told `elapsed_s` have passed, through its
    public state, so that the time limit runs out at a known step however slow the machine. Lightning adds
    the Timer after the configured callbacks: it checks the time right after this, at the same step."""

    def __init__(self, step: int, elapsed_s: float = 24 * 3600):
        self.step = step
        self.elapsed_s = elapsed_s

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            (timer,) = [c for c in trainer.callbacks if isinstance(c, Timer)]
            timer.load_state_dict({"time_elapsed": {"train": self.elapsed_s}})
