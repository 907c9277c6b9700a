"""Why a run stopped before its planned end: the `stopped_by` line of run.json and of the closing block.

A run that takes its planned steps (trainer.max_steps, or max_epochs' steps) says nothing more: that is the
usual ending. Otherwise something set trainer.should_stop: Lightning's Timer (trainer.max_time, or a Timer
callback), an EarlyStopping callback, or another callback; each is named with what decided it.
"""

from datetime import timedelta

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, Timer
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason


def stopped_by(trainer: L.Trainer) -> str | None:
    """One line naming what stopped training early; None where it ran its course."""
    if not trainer.should_stop or 0 < trainer.max_steps <= trainer.global_step:
        return None
    timers = [c for c in trainer.callbacks if isinstance(c, Timer) and _ran_out(c)]
    if timers:
        duration = timedelta(seconds=round(timers[0].time_elapsed() + timers[0].time_remaining()))
        return f"time limit {duration} reached (trainer.max_time or a Timer callback)"
    stoppers = [c for c in trainer.callbacks if isinstance(c, EarlyStopping)
                and c.stopping_reason != EarlyStoppingReason.NOT_STOPPED]
    if stoppers:
        return early_stopping_reason(stoppers[0], trainer.callback_metrics.get(stoppers[0].monitor))
    return "a callback set trainer.should_stop"


def _ran_out(timer: Timer) -> bool:
    remaining = timer.time_remaining()
    return remaining is not None and remaining <= 0


def early_stopping_reason(callback: EarlyStopping, value) -> str:
    """`early stopping: val/loss 583.4 reached stopping_threshold 590`, from the callback's public state."""
    monitor, reason = callback.monitor, callback.stopping_reason
    shown = f"{float(value):.4g}" if value is not None else "?"
    if reason == EarlyStoppingReason.STOPPING_THRESHOLD:
        return f"early stopping: {monitor} {shown} reached stopping_threshold {callback.stopping_threshold:g}"
    if reason == EarlyStoppingReason.DIVERGENCE_THRESHOLD:
        return f"early stopping: {monitor} {shown} passed divergence_threshold {callback.divergence_threshold:g}"
    if reason == EarlyStoppingReason.NON_FINITE_METRIC:
        return f"early stopping: {monitor} is {shown}, not finite"
    return (f"early stopping: {monitor} did not improve on {float(callback.best_score):.4g} in {callback.wait_count} "
            f"checks (patience {callback.patience})")
