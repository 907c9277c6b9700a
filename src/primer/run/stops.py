"""Why a run stopped before its planned steps (`stopped_by` in run.json and the closing block)."""

from datetime import timedelta

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, Timer
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason as Reason


def stopped_by(trainer: L.Trainer) -> str | None:
    if not trainer.should_stop or 0 < trainer.max_steps <= trainer.global_step:
        return None
    for timer in trainer.callbacks:
        if isinstance(timer, Timer) and timer.time_remaining() is not None and timer.time_remaining() <= 0:
            duration = timedelta(seconds=round(timer.time_elapsed() + timer.time_remaining()))
            return f"time limit {duration} reached (trainer.max_time or a Timer callback)"
    for stopper in trainer.callbacks:
        if isinstance(stopper, EarlyStopping) and stopper.stopping_reason != Reason.NOT_STOPPED:
            return early_stopping_reason(stopper, trainer.callback_metrics.get(stopper.monitor))
    return "a callback set trainer.should_stop"


def early_stopping_reason(callback: EarlyStopping, value) -> str:
    monitor, reason = callback.monitor, callback.stopping_reason
    shown = f"{float(value):.4g}" if value is not None else "?"
    if reason == Reason.STOPPING_THRESHOLD:
        return f"early stopping: {monitor} {shown} reached stopping_threshold {callback.stopping_threshold:g}"
    if reason == Reason.DIVERGENCE_THRESHOLD:
        return f"early stopping: {monitor} {shown} passed divergence_threshold {callback.divergence_threshold:g}"
    if reason == Reason.NON_FINITE_METRIC:
        return f"early stopping: {monitor} is {shown}, not finite"
    return (f"early stopping: {monitor} did not improve on {float(callback.best_score):.4g} in {callback.wait_count} "
            f"checks (patience {callback.patience})")
