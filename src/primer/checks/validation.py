"""The checks a composed config passes before anything is built: one line per problem (BadConfig).

Two layers, cheapest first, so that most bad input is stopped before torch is imported:
  1. primer's own rules: ranges (`data.batch_size` > 0), keys that must agree (`model.input_dim`
     follows `data.input_dim`), combinations a model cannot train with (`model=manual` with
     `trainer.gradient_clip_val`);
  2. the real signatures: every `trainer.*` key and value against `lightning.Trainer`, and those
     of `model`, `data`, `optimizer`, `scheduler` and of each callback and logger against the
     constructors they are passed to.
A resume is checked against its checkpoint (primer.run.checkpoints) as part of layer 2.
"""

import math

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from primer.checks.spelling import closest
from primer.config import key_and_value, task_config
from primer.exits import BadConfig

POSITIVE_INT, POSITIVE_NUMBER = "a positive integer", "a positive number"
NON_NEGATIVE_NUMBER = "a number, 0 or more"
# The keys users type most, and what each must be (on top of what the signatures allow).
RULES = {
    "seed": "an integer from 0 to 4294967295 (numpy's seeds), or null to draw one",
    "optimizer.lr": NON_NEGATIVE_NUMBER,  # torch takes lr=0 (a run that changes nothing), not less
    "data.batch_size": POSITIVE_INT,
    "data.input_dim": POSITIVE_INT,
    "data.output_dim": POSITIVE_INT,
    "model.hidden_dim": POSITIVE_INT,
    "trainer.max_steps": "a positive integer, or -1 for no limit (then set trainer.max_epochs or trainer.max_time)",
}
_UNRESOLVED = object()
CONSTRUCTOR_GROUPS = ("model", "data", "optimizer", "scheduler")
# Trainer arguments primer sets from its own groups: a command line sets them there.
OWN_GROUP = {"callbacks": "the callbacks group (callbacks=none, +callbacks.NAME._target_=...)"}


def value(cfg: DictConfig, key: str, default=None):
    """The resolved value at `key`; `default` where it is missing or depends on a run dir not yet made."""
    try:
        found = OmegaConf.select(cfg, key, default=default, throw_on_missing=True)
        # a node's values too: a logger's tags may name the run dir
        found = OmegaConf.to_container(found, resolve=True) if OmegaConf.is_config(found) else found
    except (InterpolationResolutionError, MissingMandatoryValue, ValueError):
        return default
    if found is None:
        parent, _, name = key.rpartition(".")
        node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
        if isinstance(node, DictConfig) and name in node and OmegaConf.is_interpolation(node, name):
            # `${hydra:runtime.output_dir}` before Hydra sets it: its resolver reads the unset value as null
            return default
    return found


def check_rules(cfg: DictConfig) -> None:
    """Layer 1: primer's ranges and combinations; needs no torch."""
    _check_removed_keys(cfg)
    for key, rule in RULES.items():
        found = value(cfg, key, default=_UNRESOLVED)
        if found is not _UNRESOLVED and not _satisfies(found, key):
            raise BadConfig(f"{key}={_shown(found)}: must be {rule}")
    for dim in ("input_dim", "output_dim"):
        model_dim, data_dim = value(cfg, f"model.{dim}"), value(cfg, f"data.{dim}")
        if model_dim is not None and data_dim is not None and model_dim != data_dim:
            raise BadConfig(f"model.{dim}={model_dim}: the net's size follows data.{dim} ({data_dim}); "
                            f"set data.{dim}={model_dim} instead")
    max_steps, interval = value(cfg, "trainer.max_steps"), value(cfg, "trainer.val_check_interval")
    # Lightning's rule (a whole float is its int), less the int 0 it takes and then divides by at the first step
    if _is_int(interval) and interval < 1 or \
            isinstance(interval, float) and not (0.0 <= interval <= 1.0 or interval > 1 and interval % 1 == 0):
        raise BadConfig(f"trainer.val_check_interval={interval}: must be a number of steps (1 or more), or the "
                        "fraction of an epoch after which to validate (0.0 to 1.0)")
    if _is_int(interval) and _is_int(max_steps) and max_steps > 0 and interval > max_steps:
        raise BadConfig(f"trainer.val_check_interval={interval}: a run is one epoch of trainer.max_steps={max_steps} "
                        f"steps; use trainer.val_check_interval<={max_steps}")
    if str(value(cfg, "model._target_", "")).endswith("HandGradientNet"):
        for key, harmless in (("trainer.gradient_clip_val", (None, 0)), ("trainer.accumulate_grad_batches", (1,))):
            if (found := value(cfg, key)) not in harmless:
                raise BadConfig(f"{key}={found}: model=manual steps its optimizer itself with hand-derived gradients "
                                "(manual optimization), where Lightning cannot do this; use another model or drop it")
        if (monitor := value(cfg, "scheduler.monitor")) is not None:
            raise BadConfig(f"scheduler.monitor={monitor}: model=manual steps its scheduler itself at every step, with "
                            "no metric to give it; use scheduler=step or scheduler=cosine, or another model")
        # Autocast would give the hand-derived gradients its low dtype, and 16-mixed's gradient scaler would
        # unscale gradients it never scaled: the net computes in one dtype, end to end.
        if "mixed" in str(precision := value(cfg, "trainer.precision")) or str(precision) in ("16", "bf16"):
            raise BadConfig(f"trainer.precision={precision}: model=manual derives its gradients by hand, outside "
                            "autocast and the gradient scaler of mixed precision; use 32-true, 64-true, bf16-true "
                            "or 16-true, or another model")
    logger = value(cfg, "trainer.logger")
    if logger is not None and not isinstance(logger, bool):
        raise BadConfig(f"trainer.logger={logger}: must be true or false; choose a logger with logger=tensorboard, "
                        "logger=csv, logger=mlflow, logger=wandb or logger=none")
    for key, where in OWN_GROUP.items():
        if OmegaConf.select(cfg, f"trainer.{key}", default=None) is not None:
            raise BadConfig(f"trainer.{key}: primer sets the Trainer's {key} from {where}")


def _check_removed_keys(cfg: DictConfig) -> None:
    """`~trainer.max_steps` removes a key that others interpolate (data.steps): which ones, before they fail."""
    removed = [key_and_value(o)[0] for o in _overrides(cfg) if o.startswith("~")]
    written = _written(OmegaConf.to_container(task_config(cfg), resolve=False))
    for key in removed:
        if users := [k for k, text in written.items() if f"${{{key}}}" in text]:
            needs = f": {RULES[key]}" if key in RULES else ""
            raise BadConfig(f"~{key}: {', '.join(users)} {'uses' if len(users) == 1 else 'use'} it; set {key} "
                            f"instead of removing it{needs}")


def _written(node, prefix: str = "") -> dict[str, str]:
    """Every string value of a config as written (interpolations unresolved), by its dotted key."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    found = {}
    for key, child in items:
        if isinstance(child, str):
            found[f"{prefix}{key}"] = child
        else:
            found.update(_written(child, f"{prefix}{key}."))
    return found


def _shown(found) -> str:
    """A value as a command line spells it."""
    return "null" if found is None else str(found).lower() if isinstance(found, bool) else str(found)


def _is_int(found) -> bool:
    return isinstance(found, int) and not isinstance(found, bool)


def _satisfies(found, key: str) -> bool:
    if key == "seed":
        import numpy as np

        seeds = np.iinfo(np.uint32)  # what Lightning's seed_everything accepts, for numpy's sake
        return found is None or (_is_int(found) and seeds.min <= found <= seeds.max)
    if key == "trainer.max_steps":
        return _is_int(found) and (found > 0 or found == -1)
    if RULES[key] == POSITIVE_INT:
        return _is_int(found) and found > 0
    number = isinstance(found, (int, float)) and not isinstance(found, bool) and math.isfinite(found)
    return number and (found >= 0 if RULES[key] == NON_NEGATIVE_NUMBER else found > 0)


def check_signatures(cfg: DictConfig) -> None:
    """Layer 2: each group's keys and values against the real signature of what they are passed to."""
    from primer.checks.extras import check_installed
    from primer.checks.signatures import accepts, describe, import_target, parameters

    for group, node in _constructed_nodes(cfg):
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        target_name = str(node._target_)
        try:
            target = import_target(target_name)
        except Exception:
            raise BadConfig(f"{group}._target_={target_name}: cannot be imported; give a dotted path to a class "
                            "or function") from None
        check_installed(group, target)
        params, takes_any_keyword = parameters(target)
        if node.get("_partial_", False):  # called later with the leading positional argument (parameters, ...)
            params = dict(list(params.items())[1:])
        for key in node:
            if str(key).startswith("_") or (group == "trainer" and key in ("logger", "callbacks")):
                continue
            if key not in params:
                if takes_any_keyword:
                    continue
                close = closest(key, params)
                typed = any(key_and_value(o)[0] == f"{group}.{key}" for o in _overrides(cfg))
                hint = (f"did you mean {group}.{close}?" if close else "drop it from the command line" if typed
                        else f"remove it with ~{group}.{key}")
                raise BadConfig(f"{group}.{key}: {target_name} takes no argument {key}; {hint}")
            found = value(cfg, f"{group}.{key}", default=_UNRESOLVED)
            if found is not _UNRESOLVED and not accepts(params[key], found):
                raise BadConfig(f"{group}.{key}={_shown(found)}: must be {describe(params[key])} ({target_name})")


def _constructed_nodes(cfg: DictConfig) -> list[tuple[str, object]]:
    """(key, node) of everything primer instantiates: the groups, and each callback and logger by its name.
    A null one is off; one without a `_target_` (`+callbacks.early_stopping.monitor=...` alone) is refused."""
    nodes = [(group, OmegaConf.select(cfg, group, default=None)) for group in ("trainer", *CONSTRUCTOR_GROUPS)]
    for group, example in (("callbacks", "lightning.pytorch.callbacks.EarlyStopping"),
                           ("logger", "lightning.pytorch.loggers.CSVLogger")):
        named = OmegaConf.select(cfg, group, default=None)
        for name, node in (named.items() if isinstance(named, DictConfig) else []):
            if node is None:
                continue  # callbacks.NAME=null: that one is off
            if not isinstance(node, DictConfig) or "_target_" not in node:
                raise BadConfig(f"{group}.{name}: names no class to build; give it one, e.g. "
                                f"+{group}.{name}._target_={example}")
            nodes.append((f"{group}.{name}", node))
    return nodes


def _overrides(cfg: DictConfig) -> list[str]:
    """The command line's overrides: in the config Hydra composed, or in the running job's HydraConfig."""
    from hydra.core.hydra_config import HydraConfig

    if (task := OmegaConf.select(cfg, "hydra.overrides.task", default=None)) is not None:
        return list(task)
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _no_gpu(cfg: DictConfig) -> str:
    """About what was typed: trainer.accelerator=gpu, or the trainer=gpu that set it."""
    accelerator = f"trainer.accelerator={cfg.trainer.accelerator}"
    choice = OmegaConf.select(cfg, "hydra.runtime.choices.trainer", default=None)
    typed = {key_and_value(o)[0]: o for o in _overrides(cfg)}
    if "trainer.accelerator" not in typed and f"trainer={choice}" in typed.values():
        return f"trainer={choice}: sets {accelerator}, and no CUDA GPU is available on this machine; " \
               "use trainer=cpu or trainer=auto"
    return f"{accelerator}: no CUDA GPU is available on this machine; use trainer.accelerator=cpu or " \
           "trainer.accelerator=auto"


def check(cfg: DictConfig) -> None:
    """Both layers, then the checkpoint of a resume. Raises BadConfig on the first problem."""
    check_rules(cfg)
    if value(cfg, "trainer.accelerator") in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise BadConfig(_no_gpu(cfg))
    if OmegaConf.select(cfg, "seed", default=0) is None:  # seed=null: checked as the seed it will draw
        cfg = cfg.copy()
        with open_dict(cfg):
            cfg.seed = 0
    check_signatures(cfg)
    from primer.checks.fit_checks import check_monitors, check_scheduler_length

    check_monitors(cfg)
    check_scheduler_length(cfg)
    if value(cfg, "ckpt_path") is not None:
        from primer.checks.checkpoint_files import check_resume

        check_resume(cfg)
