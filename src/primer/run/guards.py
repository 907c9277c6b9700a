"""What keeps a run's word when training is cut short: by a signal, or by a loss gone NaN.

Ctrl-C and SIGTERM stop training at the next step boundary and save a checkpoint to resume
from; a non-finite loss stops it at the first bad step. Either ends in one line and an exit
code (primer.exits), not a traceback.
"""

import contextlib
import os
import re
import shlex
import signal
import threading
import warnings
from array import array
from collections.abc import Mapping
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from primer import exits
from primer.config import launch_dir, override
from primer.exits import Diverged, Interrupted
from primer.run import run_dir
from primer.run.system import completes_step, is_logging_step, planned_steps


class SaveOnInterrupt(L.Callback):
    """Ctrl-C and SIGTERM finish the current step, save `interrupted.ckpt` and stop.

    Lightning already turns SIGTERM into a stop at the next step boundary (trainer.received_sigterm,
    then SIGTERMException through the on_exception hooks). Ctrl-C is routed to the same handler,
    instead of a KeyboardInterrupt that could land halfway through an optimizer step and leave
    a checkpoint that no uninterrupted run ever had. Other exceptions save nothing: a diverged or
    crashed run's weights are not worth resuming. (Lightning's OnExceptionCheckpoint saves on any
    exception, and its presence makes every fit look for a checkpoint to resume: not used here.)
    """

    def __init__(self, dirpath: str | Path):
        self.ckpt_path = str(Path(dirpath) / "interrupted.ckpt")
        self.signum: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set signal handlers
        lightning_handler = signal.getsignal(signal.SIGTERM)  # Lightning's, set before training starts

        def stop_after_this_step(signum, frame):
            self.signum = self.signum or signum
            lightning_handler(signum, frame)

        for signum in (signal.SIGINT, signal.SIGTERM):  # Lightning restores the handlers it found at teardown
            signal.signal(signum, stop_after_this_step)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and run_dir.has_started():  # else nothing to resume
            trainer.save_checkpoint(self.ckpt_path, weights_only=False)  # the full state, to resume from


def resume_command(overrides: list[str]) -> str:
    """The command line that repeats this run's overrides (ckpt_path is added by the caller)."""
    kept = [shlex.quote(o) for o in overrides if not o.startswith("ckpt_path=")]
    return " ".join(["python -m primer.train", *kept])


@contextlib.contextmanager
def interruptible(trainer: L.Trainer, saver: SaveOnInterrupt, resume_command: str):
    """Turns Lightning's SIGTERMException into Interrupted, with the command that resumes the run."""
    try:
        yield
    except SIGTERMException:
        signum = saver.signum or signal.SIGTERM
        if not run_dir.has_started():  # stopped as training began: the run dir is given back
            raise exits.stopped_before_training(signum) from None
        path = os.path.relpath(saver.ckpt_path, launch_dir())  # ckpt_path= is read from there (hydra.job.chdir)
        path = saver.ckpt_path if path.startswith("..") else path  # short when under it
        stopped = f"{signal.Signals(signum).name} at step {trainer.global_step}{of_planned(trainer)}: saved {path}"
        raise Interrupted(f"{stopped}; resume with: {resume_command} {shlex.quote(override('ckpt_path', path))}",
                          signum, stopped) from None


class TrainingStarted(L.Callback):
    """Tells the run dir's owner (primer.run.run_dir) that the first training step is done; first among
    primer's own callbacks, so that a divergence found at that step stops a run that is kept."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        run_dir.training_started()


# torch's anomaly mode (trainer.detect_anomaly) names the backward function that produced NaN only in its message
NAN_IN_BACKWARD = re.compile(r"Function '(\w+)' returned nan values in its (\d+)th output")


@contextlib.contextmanager
def anomaly_is_divergence(trainer: L.Trainer, guard: "StopOnNonFinite"):
    """A NaN found by trainer.detect_anomaly ends the run as a divergence does (the divergence line, exit 3,
    failure.txt), not as a bug. Torch's warning that follows the forward call's traceback is left out unless
    HYDRA_FULL_ERROR=1 asks for tracebacks."""
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
    """Stops training with Diverged, naming the first step whose training loss is NaN or inf.

    Reading a loss every step would make the host wait for the device every step. The losses
    stay where they are instead: kept as they come, folded every FOLD steps into a device-side
    record of the first non-finite one, and read on logging steps (where the logger reads the
    loss anyway), before validation, before any checkpoint is written and when training ends.
    A run that diverges between logging steps stops at the next one, naming the step it went bad
    at and its loss; every checkpoint on disk holds finite weights (ModelCheckpoint runs after
    other callbacks, and a save checks first). `advice` follows the run's lr in the message (e.g. the
    lr the seed trains this net at).

    The batches are kept beside their losses (references: primer's data is the same tensors every step)
    and looked at only where a loss is bad, or as the losses are folded: where the first bad step's batch
    holds NaN or inf, the message blames the data, not the lr.
    """

    FOLD = 64  # losses kept before folding: bounds the memory when logging is rare (log_every_n_steps=0)

    def __init__(self, advice: str = ""):
        self.advice = advice
        self._losses: list[torch.Tensor] = []  # since the last fold, on their device
        self._batches: list = []  # the batch of each of them
        self._steps = array("q")  # the step of every loss since the last read
        self._first_bad: torch.Tensor | None = None  # index into _steps of the first non-finite loss; -1: none
        self._bad_loss: torch.Tensor | None = None  # its value
        self._bad_data: torch.Tensor | None = None  # whether its batch held NaN or inf
        self.batch_at_hand = None  # the batch of the step being taken (the one an anomaly stops)
        self._saved = False  # whether this run saved a checkpoint

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        self.batch_at_hand = batch

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        loss = (outputs["loss"] if isinstance(outputs, Mapping) else outputs).detach()
        # the optimizer step this loss is part of, counted from 1: under accumulate_grad_batches, one yet to be taken
        step = trainer.global_step + (not completes_step(trainer, batch_idx))
        self._losses.append(loss)
        self._batches.append(batch)
        self._steps.append(step)
        if is_logging_step(trainer, step, batch_idx):
            self._raise_if_diverged(trainer)
        elif len(self._losses) >= self.FOLD:
            self._fold()

    def on_validation_start(self, trainer: L.Trainer, pl_module) -> None:
        self._raise_if_diverged(trainer)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module, checkpoint: dict) -> None:
        self._raise_if_diverged(trainer)
        self._saved = True  # finite: ModelCheckpoint names the file (it sets its paths before it saves)

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        self._raise_if_diverged(trainer)  # a run stopped by max_time or a callback, between logging steps

    def _fold(self) -> None:
        """Records the first non-finite loss of those kept, and whether its batch was finite, on their device:
        no host sync."""
        if not self._losses:
            return
        losses = torch.stack(self._losses)  # (n,)
        if self._first_bad is None:
            self._first_bad = torch.full((), -1, dtype=torch.long, device=losses.device)
            self._bad_loss = torch.zeros((), dtype=losses.dtype, device=losses.device)
            self._bad_data = torch.zeros((), dtype=torch.bool, device=losses.device)
        bad = ~torch.isfinite(losses)
        first = bad.byte().argmax()  # the first bad one, where there is one
        new = bad.any() & (self._first_bad < 0)
        data_bad = ~torch.stack([all_finite(batch).to(losses.device) for batch in self._batches])  # (n,)
        self._first_bad = torch.where(new, first + (len(self._steps) - len(self._losses)), self._first_bad)
        self._bad_loss = torch.where(new, losses.gather(0, first[None])[0], self._bad_loss)
        self._bad_data = torch.where(new, data_bad.gather(0, first[None])[0], self._bad_data)
        self._losses.clear()
        self._batches.clear()

    def _raise_if_diverged(self, trainer: L.Trainer) -> None:
        if (message := self.divergence(trainer)) is not None:
            raise Diverged(message)

    def divergence(self, trainer: L.Trainer) -> str | None:
        """The divergence line of the first non-finite loss kept, if any. Reads what was kept: the host waits
        for the device here."""
        message = None
        if self._first_bad is None and (not self._losses or bool(torch.isfinite(torch.stack(self._losses)).all())):
            self._losses.clear()  # the usual case: all finite, nothing folded since the last read
            self._batches.clear()
        else:
            self._fold()
            if (first := int(self._first_bad)) >= 0:
                loss, bad_data = float(self._bad_loss), bool(self._bad_data)
                message = self.message(trainer, f"train/loss is {loss}", self._steps[first], bad_data)
        self._steps, self._first_bad = array("q"), None
        return message

    def message(self, trainer: L.Trainer, what: str, step: int, bad_data: bool) -> str:
        """The divergence line: what went bad at which step, whose fault it likely is, what to go back to."""
        if bad_data:
            cause = f"the batch of step {step} holds NaN or inf (inputs or targets): the data are not finite"
        else:
            lr = trainer.optimizers[0].param_groups[0]["lr"]
            cause = f"try a smaller optimizer.lr (this run: {lr:g}{self.advice})"
        kept = self._finite_checkpoint(trainer)
        return (f"training diverged: {what} at step {step}{of_planned(trainer)}; {cause}; "
                + (f"last finite checkpoint: {kept}" if kept else "no checkpoint was saved"))

    def _finite_checkpoint(self, trainer: L.Trainer) -> str | None:
        """The newest checkpoint this run wrote (e.g. with every_n_train_steps), else the one it resumed from.
        Not a path that a resumed ModelCheckpoint state only names: that file may be another run's, or none."""
        callback = trainer.checkpoint_callback
        if self._saved and callback is not None and (path := callback.last_model_path or callback.best_model_path):
            return path
        return trainer.ckpt_path


def all_finite(batch) -> torch.Tensor:
    """Whether every floating-point tensor of a batch ((x, y), a list or a dict) is finite, on its device."""
    values = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (tuple, list)) else [batch]
    tensors = [t for t in values if isinstance(t, torch.Tensor) and t.is_floating_point()]
    if not tensors:
        return torch.tensor(True)
    return torch.stack([torch.isfinite(t).all().to(tensors[0].device) for t in tensors]).all()


def of_planned(trainer: L.Trainer) -> str:
    """` of 500`: the steps the run was to take, where known (primer.run.system.planned_steps)."""
    planned = planned_steps(trainer)
    return f" of {planned}" if planned else ""


def seed_lr_advice(model: str, tutorial: dict | None) -> str:
    """`; the seed trains model=manual at 1e-6: experiment=1_manual_gradient_computation`, from the model's
    `tutorial` entry (conf/model/*.yaml); empty for a model without one."""
    if not tutorial or tutorial.get("lr") is None:
        return ""
    preset = f": experiment={tutorial['section']}" if tutorial.get("section") else ""
    return f"; the seed trains model={model} at {tutorial['lr']:g}{preset}"




@contextlib.contextmanager
def stop_cleanly_until_training():
    """Ctrl-C or SIGTERM while the run is still being set up stops it with `Interrupted` (exit 130 or
    143, run dir removed): Lightning would otherwise catch the KeyboardInterrupt inside fit and exit 1,
    and SIGTERM would kill the process and leave a half-made run dir. From on_train_start on,
    SaveOnInterrupt's handler takes over and saves a checkpoint to resume from."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        # Lightning's SIGTERM handler calls the one it found (this) too: once SaveOnInterrupt has taken
        # Ctrl-C over, training has started and this one stands aside.
        if signal.getsignal(signal.SIGINT) is stop:
            raise exits.stopped_before_training(signum)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
