"""What a fit relies on, checked before it starts, as it would surface only at the run's end (the metric a
callback monitors, looked for when validation ends) or not at all (a cosine of T_max=-1 flips the lr each step)."""

import pydoc

from omegaconf import DictConfig, OmegaConf

from primer.checks.spelling import closest
from primer.checks.validation import value
from primer.exits import BadConfig


def check_monitors(cfg: DictConfig) -> None:
    """Each callback's `monitor`, and the scheduler's, names a metric the system logs (primer.run.system)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from primer.run.system import logged_in_fit

    logged = logged_in_fit(metrics_for(cfg))
    callbacks = OmegaConf.select(cfg, "callbacks", default=None)
    named = callbacks.items() if isinstance(callbacks, DictConfig) else enumerate(callbacks or [])  # a list too
    for key, node in [*((f"callbacks.{n}", node) for n, node in named), ("scheduler", cfg.get("scheduler"))]:
        if not isinstance(node, DictConfig) or (monitor := value(node, "monitor")) is None:
            continue
        if value(node, "strict") is False:
            continue  # EarlyStopping(strict=False) itself tolerates a metric that never comes
        target = pydoc.locate(str(node.get("_target_")))
        known = logged + (["epoch", "step"] if isinstance(target, type) and issubclass(target, ModelCheckpoint) else [])
        if monitor not in known:
            hint = f"did you mean {close}? " if (close := closest(monitor, known)) else ""
            raise BadConfig(f"{key}.monitor={monitor}: primer logs no such metric; {hint}it logs {', '.join(known)}")


def check_scheduler_length(cfg: DictConfig) -> None:
    """A scheduler value taken from trainer.max_steps (scheduler=cosine's T_max) is a real length."""
    node = OmegaConf.select(cfg, "scheduler", default=None)
    if not isinstance(node, DictConfig) or value(cfg, "trainer.max_steps") != -1:
        return
    for key, written in OmegaConf.to_container(node, resolve=False).items():
        if not (isinstance(written, str) and "trainer.max_steps" in written):
            continue
        if isinstance(length := value(cfg, f"scheduler.{key}"), int) and length <= 0:
            raise BadConfig(f"scheduler.{key}={length}: the scheduler spans the run's steps, and trainer.max_steps=-1 "
                            "sets none; set trainer.max_steps, or trainer.max_epochs (scheduler=cosine then spans "
                            "max_epochs × data.steps steps)")
        for other, plain in (("trainer.limit_train_batches", (None, 1.0)), ("trainer.accumulate_grad_batches", (1,))):
            if (found := value(cfg, other)) not in plain:
                raise BadConfig(f"{other}={found}: with trainer.max_steps=-1, scheduler.{key} spans max_epochs × "
                                "data.steps steps, which this changes; set trainer.max_steps to the run's length")


def metrics_for(cfg: DictConfig) -> tuple[str, ...]:
    """r2 and explained variance need two rows in every batch they see."""
    from primer.run.system import METRICS

    rows = [cfg.data.get(key) for key in ("batch_size", "val_size", "test_size")]
    return METRICS if min(r for r in rows if r is not None) >= 2 else ("mse",)
