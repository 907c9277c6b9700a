"""Training cut short: by a signal (a checkpoint to resume from, at a step boundary), or by a loss gone NaN
(stopped at the first bad step); either ends in one line (primer.exits)."""

import contextlib
import math
import re
import shlex
import signal
import warnings
from array import array
from collections.abc import Mapping
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from primer import exits
from primer.config import override
from primer.exits import Diverged, Interrupted
from primer.run import run_dir
from primer.run.console import short_path
from primer.run.files import INTERRUPTED
from primer.run.system import completes_step, is_logging_step, planned_steps


class TrainingStarted(L.Callback):
    """First among primer's callbacks: a divergence found at the first step stops a run that is kept."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        run_dir.training_started()


class SaveOnInterrupt(L.Callback):
    """Ctrl-C and SIGTERM go to Lightning's SIGTERM handler (a stop at the next step boundary, never halfway through
    an optimizer step), then save `interrupted.ckpt` once training has started."""

    def __init__(self, dirpath: str | Path):
        self.ckpt_path = str(Path(dirpath) / INTERRUPTED)
        self.signum: int | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        lightning_handler = signal.getsignal(signal.SIGTERM)

        def stop_after_this_step(signum, frame):
            self.signum = self.signum or signum
            lightning_handler(signum, frame)

        exits.send_signals_to(stop_after_this_step)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and run_dir.has_started():  # else nothing to resume
            trainer.save_checkpoint(self.ckpt_path, weights_only=False)


def resume_command(overrides: list[str]) -> str:
    return " ".join(["python -m primer.train", *(shlex.quote(o) for o in overrides if not o.startswith("ckpt_path="))])


@contextlib.contextmanager
def interruptible(trainer: L.Trainer, saver: SaveOnInterrupt, resume_command: str):
    try:
        yield
    except SIGTERMException:
        signum = saver.signum or signal.SIGTERM
        if not run_dir.has_started():
            raise exits.stopped_before_training(signum) from None
        path = short_path(saver.ckpt_path)  # ckpt_path= is read from the launch dir (hydra.job.chdir)
        stopped = f"{signal.Signals(signum).name} at step {trainer.global_step}{of_planned(trainer)}: saved {path}"
        raise Interrupted(f"{stopped}; resume with: {resume_command} {shlex.quote(override('ckpt_path', path))}",
                          signum, stopped) from None
    if saver.signum is not None:  # after the last step: Lightning had no step left to stop at, and fit ended
        signal.raise_signal(saver.signum)  # the handler it gave back says so (primer.exits.signals_stop)


# torch's anomaly mode (trainer.detect_anomaly) names the backward function that produced NaN only in its message
NAN_IN_BACKWARD = re.compile(r"Function '(\w+)' returned nan values in its (\d+)th output")


@contextlib.contextmanager
def anomaly_is_divergence(trainer: L.Trainer, guard: "StopOnNonFinite"):
    """A NaN found by trainer.detect_anomaly is Diverged; torch's warning shows only under HYDRA_FULL_ERROR=1."""
    with warnings.catch_warnings():
        if not exits.show_tracebacks():
            warnings.filterwarnings("ignore", message="Error detected in ", category=UserWarning)
        try:
            yield
        except RuntimeError as error:
            if not (found := NAN_IN_BACKWARD.search(str(error))):
                raise
            if (message := guard.divergence(trainer)) is None:  # else a loss went bad first, between logging steps
                bad_data = guard.batch_at_hand is not None and not bool(all_finite(guard.batch_at_hand))
                what = f"a gradient is NaN ({found[1]}, found by trainer.detect_anomaly)"
                message = guard.message(trainer, what, trainer.global_step + 1, bad_data)
            raise Diverged(message) from error


class StopOnNonFinite(L.Callback):
    """Diverged at the first step whose loss is NaN or inf (the data blamed where its batch is). No host sync per
    step: losses stay on their device, folded every FOLD steps, read on logging steps, validation, saves and the end."""

    FOLD = 64  # bounds what is kept when logging is rare (log_every_n_steps=0)

    def __init__(self, advice: str = ""):
        self.advice = advice  # follows the run's lr in the message
        self.losses, self.batches = [], []  # since the last fold
        self.steps = array("q")  # the step of each loss since the last read
        self.kept = None  # on the device: the first bad loss folded, else any; its batch not finite; its index in steps
        self.batch_at_hand = None  # the batch of the step being taken (the one an anomaly stops)
        self.saved = False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.batch_at_hand = batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.losses.append((outputs["loss"] if isinstance(outputs, Mapping) else outputs).detach())
        self.batches.append(batch)
        # the optimizer step this loss is part of, from 1: under accumulate_grad_batches, one yet to be taken
        self.steps.append(step := trainer.global_step + (not completes_step(trainer, batch_idx)))
        if is_logging_step(trainer, step, batch_idx):
            self.raise_if_diverged(trainer)
        elif len(self.losses) >= self.FOLD:
            self.fold()

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self.raise_if_diverged(trainer)
        self.saved = True  # finite: ModelCheckpoint names the file (it sets its paths before it saves)

    def raise_if_diverged(self, trainer, *args) -> None:
        if (message := self.divergence(trainer)) is not None:
            raise Diverged(message)

    on_validation_start = on_train_end = raise_if_diverged

    def fold(self) -> None:
        if not self.losses:
            return
        losses = torch.stack(self.losses)  # (n,)
        found = (losses, ~torch.stack([all_finite(b).to(losses.device) for b in self.batches]),
                 torch.arange(len(self.steps) - len(losses), len(self.steps), device=losses.device))
        if self.kept is not None:  # the earlier one first
            found = tuple(torch.cat([old[None], new]) for old, new in zip(self.kept, found))
        first = (~torch.isfinite(found[0])).byte().argmax()[None]  # (1,): the first bad one, else 0
        self.kept, self.losses, self.batches = tuple(t.gather(0, first)[0] for t in found), [], []

    def divergence(self, trainer: L.Trainer) -> str | None:
        message = None
        if self.kept is not None or (self.losses and not bool(torch.isfinite(torch.stack(self.losses)).all())):
            self.fold()
            loss, bad_data, index = self.kept
            if not math.isfinite(loss := float(loss)):
                message = self.message(trainer, f"train/loss is {loss}", self.steps[int(index)], bool(bad_data))
        self.losses, self.batches, self.steps, self.kept = [], [], array("q"), None
        return message

    def message(self, trainer: L.Trainer, what: str, step: int, bad_data: bool) -> str:
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        cause = (f"the batch of step {step} holds NaN or inf (inputs or targets): the data are not finite" if bad_data
                 else f"try a smaller optimizer.lr (this run: {lr:g}{self.advice})")
        # the newest checkpoint this run wrote, else the one it resumed from: never a path a resumed state only names
        callback = trainer.checkpoint_callback
        kept = (self.saved and callback and (callback.last_model_path or callback.best_model_path)) or trainer.ckpt_path
        return (f"training diverged: {what} at step {step}{of_planned(trainer)}; {cause}; "
                + (f"last finite checkpoint: {kept}" if kept else "no checkpoint was saved"))


def all_finite(batch) -> torch.Tensor:
    """Whether every floating-point tensor of a batch is finite, on its device."""
    values = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (tuple, list)) else [batch]
    tensors = [t for t in values if isinstance(t, torch.Tensor) and t.is_floating_point()]
    return torch.stack([torch.isfinite(t).all().to(tensors[0].device) for t in tensors]).all() if tensors \
        else torch.tensor(True)


def of_planned(trainer: L.Trainer) -> str:
    return f" of {planned}" if (planned := planned_steps(trainer)) else ""


def tutorial_lr_advice(model: str, tutorial: dict | None) -> str:
    if not tutorial or tutorial.get("lr") is None:
        return ""
    preset = f": experiment={tutorial['section']}" if tutorial.get("section") else ""
    return f"; the tutorial trains model={model} at {tutorial['lr']:g}{preset}"
