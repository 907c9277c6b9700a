"""The checks a checkpoint file passes before it is used: for eval, and for a resume.

Every load is `weights_only`: tensors and plain containers come back, and a pickle that
would run code is refused without running it. The config stored inside is then checked as data
(primer.checks.stored_config) before anything reads it.
"""

import shlex
from collections.abc import Collection
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from primer.checks import stored_config
from primer.exits import BadConfig, first_line
from primer.run.checkpoints import CONFIG_KEY


def load_checkpoint(path: str | Path, where: str | None = None, own_targets: Collection[str] = ()) -> dict:
    """The checkpoint at `path`, loaded without running pickled code; BadConfig says why it cannot be,
    after `where` (`ckpt_path=PATH` as typed). `own_targets`: see stored_config.check."""
    import pickle
    import re

    import torch

    where = where or f"ckpt_path={path}"
    if not Path(path).is_file():
        raise BadConfig(f"{where}: no such file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+)", str(error))  # a pickled callable: what a malicious file runs
        if found:
            raise BadConfig(
                f"{where}: refused: it holds pickled Python objects that could run code ({found[1]}); "
                "loaded with weights_only=True, nothing was run; use a checkpoint written by primer.train"
            ) from None
        raise BadConfig(f"{where}: not a checkpoint (torch.load cannot read it)") from None
    except Exception as error:
        raise BadConfig(f"{where}: not a checkpoint ({first_line(error)})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise BadConfig(f"{where}: not a Lightning checkpoint (no state_dict in it)")
    if CONFIG_KEY in checkpoint:  # read only what primer's groups could have written
        stored_config.check(checkpoint[CONFIG_KEY], where, own_targets)
    _check_checkpoint_paths(checkpoint.get("callbacks"), where)
    return checkpoint


CHECKPOINT_PATHS = ("best_model_path", "last_model_path", "kth_best_model_path", "best_k_models")


def _check_checkpoint_paths(states: object, where: str) -> None:
    """A resumed ModelCheckpoint deletes its restored best/last checkpoint once it saves a new one, when the
    path lies under its dirpath; `<dirpath>/../../file` does for Lightning (its test does not normalize),
    so a path with `..` is refused. What ModelCheckpoint writes is its real dirpath joined to a name."""
    for state in (states.values() if isinstance(states, dict) else ()):
        for name in CHECKPOINT_PATHS:
            value = state.get(name) if isinstance(state, dict) else None
            for path in (value if isinstance(value, dict) else [value]):
                if isinstance(path, str) and ".." in Path(path).parts:
                    raise BadConfig(f"{where}: refused: its ModelCheckpoint state has {name} {path!r}, a path out of "
                                    "its checkpoint dir that a resume would delete; nothing was run "
                                    "(use a checkpoint written by primer.train)")


def check_resume(cfg: DictConfig) -> None:
    """Raises BadConfig unless the run can resume from cfg.ckpt_path as configured.

    The checkpoint must hold this model with these shapes and this optimizer class; the run must
    go past the checkpoint's step; and an lr change is refused where a scheduler computes the lr
    from its own restored state (other optimizer values are applied: ApplyOptimizerConfig).
    """
    from primer.checks.resume import checkpoint_to_resume, shown

    path = checkpoint_to_resume(cfg)  # ckpt_path as Lightning reads it: a path, or last/hpc
    if path is None:
        return  # ckpt_path=last, and no checkpoint yet: training starts from scratch, as in Lightning
    where = shown(cfg, path)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    # a target beyond primer's groups (+callbacks.NAME._target_=...) is accepted where this run builds it anyway
    own = stored_config.targets_in({k: v for k, v in OmegaConf.to_container(cfg).items() if k != "hydra"})
    checkpoint = check_checkpoint(path, model, cfg.optimizer._target_, where, own)
    step, max_steps = checkpoint.get("global_step", 0), cfg.trainer.max_steps
    if max_steps != -1 and max_steps <= step:
        raise BadConfig(f"trainer.max_steps={max_steps}: {where} is at step {step}; "
                        f"a resume needs trainer.max_steps>{step}")
    stored = checkpoint.get(CONFIG_KEY, {}).get("config", {})
    then_lr, now_lr = stored.get("optimizer", {}).get("lr"), cfg.optimizer.get("lr")
    if cfg.get("scheduler") and then_lr is not None and then_lr != now_lr:
        raise BadConfig(f"optimizer.lr={now_lr}: {where} was trained with optimizer.lr={then_lr}, and "
                        "with a scheduler the lr follows the scheduler's restored state; resume with its lr or start "
                        "a new run")


def check_checkpoint(path: str, model: dict, optimizer_target: str, where: str | None = None,
                     own_targets: Collection[str] = ()) -> dict:
    """Raises BadConfig unless the checkpoint at `path` was made by this model, with these shapes.

    `model` is the run's resolved model config; the net is built from it to compare shapes,
    which also covers checkpoints made without a stored config. Returns the loaded checkpoint.
    """
    from hydra.utils import instantiate

    where = where or f"ckpt_path={path}"
    checkpoint = load_checkpoint(path, where, own_targets)
    stored = checkpoint.get(CONFIG_KEY, {}).get("config", {})
    hint = " ".join(map(shlex.quote, checkpoint.get(CONFIG_KEY, {}).get("overrides", []))) or "(none)"
    then = {f"model.{k}": v for k, v in stored.get("model", {}).items()}
    then["optimizer._target_"] = stored.get("optimizer", {}).get("_target_", optimizer_target)
    now = {f"model.{k}": v for k, v in model.items()} | {"optimizer._target_": optimizer_target}
    for key in now:
        if key in then and then[key] != now[key]:
            raise BadConfig(
                f"{where}: made with {key}={then[key]}, this run has {key}={now[key]}; "
                f"resume with the overrides it was trained with: {hint}"
            )
    expected = {f"net.{k}": tuple(v.shape) for k, v in instantiate(model).state_dict().items()}
    found = {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    if found != expected:
        key = next(k for k in sorted(expected.keys() | found.keys()) if expected.get(k) != found.get(k))
        raise BadConfig(
            f"{where}: made by a different model or shape: {key} is {found.get(key)} there, "
            f"{expected.get(key)} here; resume with the overrides it was trained with: {hint}"
        )
    return checkpoint
