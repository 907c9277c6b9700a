"""No host-device sync on a training step that logs nothing.

On a GPU every call that turns a tensor into a Python value (`.item()`, `bool(t)`, `float(t)`,
`.cpu()`, ...) makes the host wait for the device. On the CPU the same calls are free, so these
tests count them instead: a run of the real config, with everything the default run does (logger,
progress, checkpoint, model summary, divergence check), may make none between its logging steps.
"""

import re
import sys
import traceback

import lightning as L
import pytest
import torch

import primer.cli.build
from primer.cli.train import fit_run
from tests.conftest import TINY

SYNC_CALLS = ("item", "__bool__", "__float__", "__int__", "tolist", "cpu", "numpy")
STEPS, EVERY = 12, 5
LOGGING_STEPS = {1, 5, 10, 12}  # the first, every 5th and the last (primer.run.system.is_logging_step)
RUN = [*TINY, f"trainer.max_steps={STEPS}", f"trainer.log_every_n_steps={EVERY}"]


class SyncCounter(L.Callback):
    """Counts sync-capable tensor calls from the start of a step that logs nothing to the start of the next.
    Put first among the callbacks, so that every other hook of such a step falls inside."""

    def __init__(self):
        self.counting = False
        self.calls: list[str] = []
        self.steps_watched: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        step = trainer.global_step + 1  # the step this batch completes
        self.counting = step not in LOGGING_STEPS
        if self.counting:
            self.steps_watched.append(step)

    def on_train_end(self, trainer, pl_module) -> None:
        self.counting = False

    def counted(self, name: str):
        original = getattr(torch.Tensor, name)

        def call(tensor, *args, **kwargs):
            if self.counting:
                caller = traceback.extract_stack(limit=2)[0]
                self.calls.append(f"Tensor.{name} at {caller.filename}:{caller.lineno} ({caller.name})")
            return original(tensor, *args, **kwargs)

        return call


@pytest.fixture
def counted_run(make_config, monkeypatch):
    """run(*overrides) trains RUN + overrides and returns the sync-capable calls made between logging steps."""
    counter = SyncCounter()
    for name in SYNC_CALLS:
        monkeypatch.setattr(torch.Tensor, name, counter.counted(name))
    with_primers = primer.cli.build.loggers_and_callbacks

    def with_counter(*args):
        loggers, callbacks = with_primers(*args)
        return loggers, [counter, *callbacks]

    monkeypatch.setattr(primer.cli.build, "loggers_and_callbacks", with_counter)

    def run(*overrides, extra_callback=None):
        if extra_callback is not None:
            monkeypatch.setattr(primer.cli.build, "loggers_and_callbacks",
                                lambda *args: (lambda lc: (lc[0], [extra_callback, *lc[1]]))(with_counter(*args)))
        fit_run(make_config(*RUN, *overrides))
        assert counter.steps_watched == sorted(set(range(1, STEPS + 1)) - LOGGING_STEPS)  # it watched them all
        return counter.calls

    return run


def test_default_run_makes_no_sync_between_logging_steps(counted_run):
    """TensorBoard, plain progress lines, checkpoint, summary and divergence check, as `python -m primer.train`."""
    assert counted_run() == []


def test_live_bar_manual_optimization_and_scheduler_make_no_sync_between_logging_steps(counted_run, monkeypatch,
                                                                                       capsys):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # the live tqdm bar, not the plain lines
    assert counted_run("model=manual", "optimizer.lr=1e-6", "scheduler=step") == []
    assert re.search(r"12/12 \[[^\]]*train/loss=\d", capsys.readouterr().out)  # the bar shows the loss


def test_the_counter_catches_a_callback_that_reads_the_loss_every_step(counted_run):
    class ReadsTheLoss(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            float(outputs["loss"])

    calls = counted_run(extra_callback=ReadsTheLoss())
    assert [c for c in calls if c.startswith("Tensor.__float__") and "on_train_batch_end" in c] != []
    assert len([c for c in calls if "on_train_batch_end" in c]) >= STEPS - len(LOGGING_STEPS)
