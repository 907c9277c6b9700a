"""The checks a checkpoint file passes before it is used: for eval, and for a resume.

Every load is `weights_only`: tensors and plain containers come back, and a pickle that
would run code is refused without running it. The config stored inside is then checked as data
(primer.checks.stored_config) before anything reads it.
"""

import os
import shlex
from collections.abc import Collection
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from primer.checks import failing_closed, stored_config
from primer.exits import BadConfig, first_line
from primer.run.checkpoint_io import PATH_STATE
from primer.run.checkpoints import CONFIG_KEY


def load_checkpoint(path: str | Path, where: str | None = None, own_targets: Collection[str] = ()) -> dict:
    """The checkpoint at `path`, loaded without running pickled code; BadConfig says why it cannot be,
    after `where` (`ckpt_path=PATH` as typed). `own_targets`: see stored_config.check."""
    import pickle
    import re

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
    with failing_closed(where):
        if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
            raise BadConfig(f"{where}: not a Lightning checkpoint (no state_dict in it)")
        _check_state_dict(checkpoint["state_dict"], where)
        if CONFIG_KEY in checkpoint:  # read only what primer's groups could have written
            stored_config.check(checkpoint[CONFIG_KEY], where, own_targets)
        _check_callback_states(checkpoint.get("callbacks", {}), where)
    return checkpoint


def _check_state_dict(state_dict: object, where: str) -> None:
    if not isinstance(state_dict, dict):
        raise BadConfig(f"{where}: refused: its state_dict is a {type(state_dict).__name__}, not weights by name; "
                        "nothing was run (use a checkpoint written by primer.train)")
    for name, weights in state_dict.items():
        if not isinstance(name, str) or not isinstance(weights, torch.Tensor):
            raise BadConfig(f"{where}: refused: its state_dict has {name!r}: a {type(weights).__name__}, not a "
                            "tensor; nothing was run (use a checkpoint written by primer.train)")


def _check_callback_states(states: object, where: str) -> None:
    """Lightning's ModelCheckpoint restores the files its state names and deletes them after its next save, where
    it judges them its own: `<dirpath>/../../file` (its test does not normalize) and `local:///dir` (a protocol
    it does not test) pass. What it writes is its real dirpath joined to a name: a plain absolute path.
    (primer's checkpoint IO forgets these paths on a resume anyway: primer.run.checkpoint_io.)"""
    if not isinstance(states, dict) or not all(isinstance(state, dict) for state in states.values()):
        raise BadConfig(f"{where}: refused: its callbacks are not callback states by name; nothing was run "
                        "(use a checkpoint written by primer.train)")
    for state_key, state in states.items():
        for name in PATH_STATE:
            value = state.get(name)
            for path in (value if isinstance(value, dict) else [value]):
                if path not in ("", None) and not _written_by_model_checkpoint(path):
                    raise BadConfig(f"{where}: refused: its {str(state_key).partition('{')[0]} state has {name} "
                                    f"{path!r}, not a plain absolute path as ModelCheckpoint writes: Lightning "
                                    "trusts it, and a resume would delete it; nothing was run "
                                    "(use a checkpoint written by primer.train)")


def _written_by_model_checkpoint(path: object) -> bool:
    return isinstance(path, str) and os.path.isabs(path) and os.path.normpath(path) == path


def check_resume(cfg: DictConfig) -> None:
    """Raises BadConfig unless the run can resume from cfg.ckpt_path as configured.

    The checkpoint must hold this model with these shapes and this optimizer class; the run must
    go past the step Lightning resumes at; and an lr change is refused where a scheduler computes the lr
    from its own restored state (other optimizer values are applied: ApplyOptimizerConfig).
    """
    from primer.checks.resume import checkpoint_to_resume, shown

    path = checkpoint_to_resume(cfg)  # ckpt_path as Lightning reads it: a path, or last/hpc
    if path is None:
        return  # ckpt_path=last, and no checkpoint yet: training starts from scratch, as in Lightning
    where = shown(cfg, path)
    with failing_closed(where):
        model = OmegaConf.to_container(cfg.model, resolve=True)
        # a target beyond primer's groups (+callbacks.NAME._target_=...) is accepted where this run builds it anyway
        own = stored_config.targets_in({k: v for k, v in OmegaConf.to_container(cfg).items() if k != "hydra"})
        checkpoint = check_checkpoint(path, model, cfg.optimizer._target_, where, own)
        step, max_steps = checkpoint["global_step"], cfg.trainer.max_steps  # the step the loops resume at
        if max_steps != -1 and max_steps <= step:
            raise BadConfig(f"trainer.max_steps={max_steps}: {where} is at step {step}; "
                            f"a resume needs trainer.max_steps>{step}")
        then_lr, now_lr = _stored_group(checkpoint, "optimizer", where).get("lr"), cfg.optimizer.get("lr")
        if cfg.get("scheduler") and then_lr is not None and then_lr != now_lr:
            raise BadConfig(f"optimizer.lr={now_lr}: {where} was trained with optimizer.lr={then_lr}, and "
                            "with a scheduler the lr follows the scheduler's restored state; resume with its lr or "
                            "start a new run")


def check_checkpoint(path: str, model: dict, optimizer_target: str, where: str | None = None,
                     own_targets: Collection[str] = ()) -> dict:
    """Raises BadConfig unless the checkpoint at `path` was made by this model, with these shapes, and its
    step counters agree (`loop_counters`).

    `model` is the run's resolved model config; the net is built from it to compare shapes,
    which also covers checkpoints made without a stored config. Returns the loaded checkpoint.
    """
    from hydra.utils import instantiate

    from primer.checks.loop_counters import check_loop_counters
    from primer.tutorial.nets import HandGradientNet

    where = where or f"ckpt_path={path}"
    checkpoint = load_checkpoint(path, where, own_targets)
    with failing_closed(where):
        hint = " ".join(map(shlex.quote, checkpoint.get(CONFIG_KEY, {}).get("overrides", []))) or "(none)"
        then = {f"model.{k}": v for k, v in _stored_group(checkpoint, "model", where).items()}
        then["optimizer._target_"] = _stored_group(checkpoint, "optimizer", where).get("_target_", optimizer_target)
        now = {f"model.{k}": v for k, v in model.items()} | {"optimizer._target_": optimizer_target}
        for key in now:
            if key in then and then[key] != now[key]:
                raise BadConfig(
                    f"{where}: made with {key}={then[key]}, this run has {key}={now[key]}; "
                    f"resume with the overrides it was trained with: {hint}"
                )
        net = instantiate(model)
        expected = {f"net.{k}": tuple(v.shape) for k, v in net.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
        if found != expected:
            key = next(k for k in sorted(expected.keys() | found.keys()) if expected.get(k) != found.get(k))
            raise BadConfig(
                f"{where}: made by a different model or shape: {key} is {found.get(key)} there, "
                f"{expected.get(key)} here; resume with the overrides it was trained with: {hint}"
            )
        # as primer.run.system.Regression decides: a HandGradientNet steps its optimizer itself
        check_loop_counters(checkpoint, not isinstance(net, HandGradientNet), where)
    return checkpoint


def _stored_group(checkpoint: dict, group: str, where: str) -> dict:
    """A group of the checkpoint's stored config ({} where there is none)."""
    found = checkpoint.get(CONFIG_KEY, {}).get("config", {}).get(group, {})
    if not isinstance(found, dict):
        raise BadConfig(f"{where}: refused: its stored config has {group}={str(found)[:100]}: not a group "
                        "of keys; nothing was run (use a checkpoint written by primer.train)")
    return found
