"""The checks a composed config passes before anything is built, cheapest first, one line per problem (BadConfig):
primer's rules (no torch), each group against its target's signature, what a fit relies on, a resume's checkpoint."""

import math
import pydoc
import typing
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from primer.checks import entries
from primer.checks.spelling import closest
from primer.config import key_and_value, planned_steps_args, task_config
from primer.exits import BadConfig


def _int(found) -> bool:
    return isinstance(found, int) and not isinstance(found, bool)


POSITIVE_INT = ("must be a positive integer", lambda v: _int(v) and v > 0)
# The keys users type most (--help lists them): what each must be, on top of what the signatures allow.
RULES = {
    "seed": ("must be an integer from 0 to 4294967295 (numpy's seeds), or null to draw one",
             lambda v: v is None or _int(v) and 0 <= v < 2**32),
    "optimizer.lr": ("must be a number, 0 or more",  # torch takes lr=0 (a run that changes nothing), not less
                     lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < math.inf),
    "data.batch_size": POSITIVE_INT,
    "data.input_dim": POSITIVE_INT,
    "data.output_dim": POSITIVE_INT,
    "model.hidden_dim": POSITIVE_INT,
    "trainer.max_steps": ("must be a positive integer, or -1 for no limit (then set trainer.max_epochs or "
                          "trainer.max_time)", lambda v: _int(v) and (v > 0 or v == -1)),
    # Lightning's rule (a whole float is its int), less the int 0 it takes and then divides by at the first step
    "trainer.val_check_interval": ("must be a number of steps (1 or more), or the fraction of an epoch after which "
                                   "to validate (0.0 to 1.0)", lambda v: v >= 1 if _int(v) else
                                   not isinstance(v, float) or 0.0 <= v <= 1.0 or v > 1 and v % 1 == 0),
    "trainer.logger": ("must be true or false; choose a logger with logger=tensorboard, logger=csv, logger=mlflow, "
                       "logger=wandb or logger=none", lambda v: v is None or isinstance(v, bool)),
}
MANUAL_OPTIMIZER = ("model=manual steps its optimizer itself with hand-derived gradients (manual optimization), "
                    "where Lightning cannot do this; use another model or drop it", lambda v: v in (None, 0))
# What model=manual cannot train with: it steps its optimizer and scheduler itself, in one dtype end to end
# (autocast would give its hand-derived gradients the low dtype; 16-mixed's scaler would unscale them).
MANUAL = {
    "trainer.gradient_clip_val": MANUAL_OPTIMIZER,
    "trainer.accumulate_grad_batches": (MANUAL_OPTIMIZER[0], lambda v: v == 1),
    "scheduler.monitor": ("model=manual steps its scheduler itself at every step, with no metric to give it; use "
                          "scheduler=step or scheduler=cosine, or another model", lambda v: v is None),
    "trainer.precision": ("model=manual derives its gradients by hand, outside autocast and the gradient scaler of "
                          "mixed precision; use 32-true, 64-true, bf16-true or 16-true, or another model",
                          lambda v: "mixed" not in str(v) and str(v) not in ("16", "bf16")),
}
# A scheduler given as a dict without `_target_` is Lightning's lr_scheduler dict (scheduler=plateau): its keys are
# that dataclass's fields; `interval` is typed str, and Lightning takes only these two
LR_SCHEDULER_DICT = "lightning.pytorch.utilities.types.LRSchedulerConfig"
NARROWER = {LR_SCHEDULER_DICT: {"interval": typing.Literal["step", "epoch"]}}
_UNRESOLVED = object()


def value(cfg: DictConfig, key: str, default=None):
    """The resolved value at `key`; `default` where it is missing or depends on a run dir not yet made."""
    try:
        found = OmegaConf.select(cfg, key, default=default, throw_on_missing=True)
        # a node's values too: a logger's tags may name the run dir
        found = OmegaConf.to_container(found, resolve=True) if OmegaConf.is_config(found) else found
    except (InterpolationResolutionError, MissingMandatoryValue, ValueError):
        return default
    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
    # `${hydra:runtime.output_dir}` before Hydra sets it: its resolver reads the unset value as null
    unset = found is None and isinstance(node, DictConfig) and name in node and OmegaConf.is_interpolation(node, name)
    return default if unset else found


def check_rules(cfg: DictConfig) -> None:
    """primer's own rules: the tables above, sizes that follow data's, and what only primer sets."""
    _check_removed_keys(cfg)
    manual = str(value(cfg, "model._target_", "")).endswith("HandGradientNet")
    for key, (reason, ok) in [*RULES.items(), *(MANUAL.items() if manual else [])]:
        if (found := value(cfg, key, default=_UNRESOLVED)) is not _UNRESOLVED and not ok(found):
            raise BadConfig(f"{key}={_shown(found)}: {reason}")
    for dim in ("input_dim", "output_dim"):
        model_dim, data_dim = value(cfg, f"model.{dim}"), value(cfg, f"data.{dim}")
        if model_dim is not None and data_dim is not None and model_dim != data_dim:
            raise BadConfig(f"model.{dim}={model_dim}: the net's size follows data.{dim} ({data_dim}); "
                            f"set data.{dim}={model_dim} instead")
    max_steps, interval = value(cfg, "trainer.max_steps"), value(cfg, "trainer.val_check_interval")
    if _int(interval) and _int(max_steps) and 0 < max_steps < interval:
        raise BadConfig(f"trainer.val_check_interval={interval}: a run is one epoch of trainer.max_steps={max_steps} "
                        f"steps; use trainer.val_check_interval<={max_steps}")
    if OmegaConf.select(cfg, "trainer.callbacks", default=None) is not None:
        raise BadConfig("trainer.callbacks: primer sets the Trainer's callbacks from the callbacks group "
                        "(callbacks=none, +callbacks.NAME._target_=...)")
    _check_dirs(cfg)


def _check_dirs(cfg: DictConfig) -> None:
    """A key named *dir or dirpath names a dir that primer, Lightning or a logger writes into: no file in its way."""
    written = entries(OmegaConf.to_container(task_config(cfg), resolve=False))
    for key, _ in sorted(written, key=lambda entry: "${" in str(entry[1])):  # the key typed, before those that use it
        if not key.endswith(("dir", "dirpath")) or not isinstance(path := value(cfg, key), str) or "://" in path:
            continue
        if value(cfg, "hydra.job.chdir") and not Path(path).is_absolute():
            continue  # relative to the run dir, not yet made
        in_the_way = next((p for p in (Path(path), *Path(path).parents) if p.exists()), Path("."))
        if not in_the_way.is_dir():
            raise BadConfig(f"{key}={path}: {in_the_way} is not a dir; give a dir to write into, or a path where one "
                            "can be made")


def _check_removed_keys(cfg: DictConfig) -> None:
    """`~trainer.max_steps` removes a key that others interpolate (data.steps): which ones, before they fail."""
    written = list(entries(OmegaConf.to_container(task_config(cfg), resolve=False)))
    for key in [key_and_value(o)[0] for o in _overrides(cfg) if o.startswith("~")]:
        if users := [k for k, text in written if isinstance(text, str) and f"${{{key}}}" in text]:
            needs = f": it {RULES[key][0]}" if key in RULES else ""
            raise BadConfig(f"~{key}: {', '.join(users)} {'uses' if len(users) == 1 else 'use'} it; set {key} "
                            f"instead of removing it{needs}")


def _shown(found) -> str:
    """A value as a command line spells it."""
    return "null" if found is None else str(found).lower() if isinstance(found, bool) else str(found)


def check_signatures(cfg: DictConfig) -> None:
    """Each group's keys and values against the arguments of what they are passed to."""
    from primer.checks.signatures import arguments, check_installed, problem

    for group, node in _constructed_nodes(cfg):
        try:
            if (target := pydoc.locate(target_name := str(node.get("_target_", LR_SCHEDULER_DICT)))) is None:
                raise ImportError(target_name)
        except Exception:  # pydoc's ErrorDuringImport too: a module that fails as it is imported
            raise BadConfig(f"{group}._target_={target_name}: cannot be imported; give a dotted path to a class "
                            "or function") from None
        check_installed(group, target)
        takes = arguments(target) | NARROWER.get(target_name, {})
        for key in [k for k in node if not str(k).startswith("_")]:
            if key not in takes:
                close = closest(key, takes)
                typed = any(key_and_value(o)[0] == f"{group}.{key}" for o in _overrides(cfg))
                hint = (f"did you mean {group}.{close}?" if close else "drop it from the command line" if typed
                        else f"remove it with ~{group}.{key}" if "[" not in group  # Hydra removes no list item's key
                        else f"give {group.partition('[')[0]} again without it")
                raise BadConfig(f"{group}.{key}: {target_name} takes no argument {key}; {hint}")
            found = value(cfg, f"{group}.{key}", default=_UNRESOLVED)
            if found is not _UNRESOLVED and (wrong := problem(takes[key], found)):
                raise BadConfig(f"{group}.{key}={_shown(found)}: {wrong} ({target_name})")


def _constructed_nodes(cfg: DictConfig) -> list[tuple[str, DictConfig]]:
    """(key, node) of everything primer builds: the groups, each callback and logger by its name (null: off), and
    each node inside them that names a `_target_` (scheduler=plateau's scheduler.scheduler): instantiate builds all;
    a scheduler without one is Lightning's lr_scheduler dict."""
    nodes = [(group, cfg.get(group)) for group in ("trainer", "model", "data", "optimizer", "scheduler")]
    for group, example in (("callbacks", "lightning.pytorch.callbacks.EarlyStopping"),
                           ("logger", "lightning.pytorch.loggers.CSVLogger")):
        named = OmegaConf.select(cfg, group, default=None)
        for name, node in (named.items() if isinstance(named, DictConfig) else []):
            if node is not None and not (isinstance(node, DictConfig) and "_target_" in node):
                raise BadConfig(f"{group}.{name}: names no class to build; give it one, e.g. "
                                f"+{group}.{name}._target_={example}")
            nodes.append((f"{group}.{name}", node))
    tree = [entry for key, node in nodes if isinstance(node, DictConfig)
            for entry in entries(OmegaConf.to_container(node, resolve=False), key)]
    # instantiate builds nothing under `_recursive_: false`: the node gets what is under it as config
    config_only = tuple(k.removesuffix("_recursive_") for k, v in tree if k.endswith("._recursive_") and v is False)
    built = [k.removesuffix("._target_") for k, _ in tree if k.endswith("._target_")]
    built = [key for key in built if not key.startswith(config_only)]
    if isinstance(scheduler := cfg.get("scheduler"), DictConfig) and "_target_" not in scheduler:
        built.insert(0, "scheduler")  # Lightning's lr_scheduler dict, checked as LR_SCHEDULER_DICT
    return [(key, OmegaConf.select(cfg, key)) for key in built]  # parents first, a list's items as key[i]


def _overrides(cfg: DictConfig) -> list[str]:
    """The command line's overrides: in the config Hydra composed, or in the running job's HydraConfig."""
    from hydra.core.hydra_config import HydraConfig

    task = OmegaConf.select(cfg, "hydra.overrides.task", default=None)
    return list(task if task is not None else HydraConfig.get().overrides.task if HydraConfig.initialized() else [])


def check(cfg: DictConfig) -> None:
    """All of them, cheapest first; raises BadConfig on the first problem."""
    check_rules(cfg)
    import torch  # the checks below import Lightning, and torch with it

    if value(cfg, "trainer.accelerator") in ("gpu", "cuda") and not torch.cuda.is_available():
        typed = {key_and_value(o)[0]: o for o in _overrides(cfg)}
        key = next((k for k in ("trainer.accelerator", "trainer") if k in typed), "trainer.accelerator")  # what set it
        raise BadConfig(f"{typed.get(key, f'{key}={cfg.trainer.accelerator}')}: no CUDA GPU is available on this "
                        f"machine; use {key}=cpu or {key}=auto")
    if OmegaConf.select(cfg, "seed", default=0) is None:  # seed=null: checked as the seed it will draw
        cfg = OmegaConf.merge(cfg, {"seed": 0})
    check_signatures(cfg)
    check_monitors(cfg)
    check_scheduler_length(cfg)
    check_first_validation(cfg)
    if value(cfg, "ckpt_path") is not None:
        from primer.checks.checkpoint_files import check_resume

        check_resume(cfg)


def check_monitors(cfg: DictConfig) -> None:
    """Each callback's `monitor`, and the scheduler's, names a metric the system logs (primer.run.system)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from primer.run.system import logged_in_fit, metrics_for

    logged = logged_in_fit(metrics_for(cfg.data))
    callbacks = OmegaConf.select(cfg, "callbacks", default=None)
    named = callbacks.items() if isinstance(callbacks, DictConfig) else enumerate(callbacks or [])  # a list too
    for key, node in [*((f"callbacks.{n}", node) for n, node in named), ("scheduler", cfg.get("scheduler"))]:
        monitor = value(node, "monitor") if isinstance(node, DictConfig) else None
        if monitor is None or value(node, "strict") is False:  # EarlyStopping(strict=False) tolerates its absence
            continue
        target = pydoc.locate(str(node.get("_target_")))
        known = logged + (["epoch", "step"] if isinstance(target, type) and issubclass(target, ModelCheckpoint) else [])
        if monitor not in known:
            hint = f"did you mean {close}? " if (close := closest(monitor, known)) else ""
            raise BadConfig(f"{key}.monitor={monitor}: primer logs no such metric; {hint}it logs {', '.join(known)}")


def check_scheduler_length(cfg: DictConfig) -> None:
    """A scheduler's length is a count of steps: one left to the run (scheduler=cosine's T_max) needs a run that
    has one, and one taken from trainer.max_steps a trainer.max_steps."""
    node = OmegaConf.select(cfg, "scheduler", default=None)
    if not isinstance(node, DictConfig) or value(cfg, "trainer.max_steps") != -1:
        return
    if (left := planned_steps_args(node)) and value(cfg, "trainer.max_epochs") in (None, -1):
        raise BadConfig(f"scheduler.{left[0]}: the scheduler spans the run's steps, and trainer.max_steps=-1 with no "
                        "trainer.max_epochs sets none; set trainer.max_steps, or trainer.max_epochs")
    for key, written in OmegaConf.to_container(node, resolve=False).items():
        if not (isinstance(written, str) and "trainer.max_steps" in written):
            continue
        if isinstance(length := value(cfg, f"scheduler.{key}"), int) and length <= 0:
            raise BadConfig(f"scheduler.{key}={length}: the scheduler spans the run's steps, and trainer.max_steps=-1 "
                            f"sets none; set trainer.max_steps, or 'scheduler.{key}=???' for the steps the run plans")


def check_first_validation(cfg: DictConfig) -> None:
    """A scheduler stepped every `frequency` batches on a val/ metric needs a validation by its first step: Lightning
    raises there, inside the run. Where Lightning alone can count the first validation's step, it judges."""
    node = OmegaConf.select(cfg, "scheduler", default=None)
    if not isinstance(node, DictConfig) or value(node, "interval") != "step" or value(node, "strict") is False \
            or not str(monitor := value(node, "monitor")).startswith("val/"):
        return
    if any(value(cfg, f"trainer.{key}") not in allowed for key, allowed in [
            ("limit_train_batches", (None, 1.0)), ("overfit_batches", (0, 0.0)), ("fast_dev_run", (False, 0)),
            ("check_val_every_n_epoch", (1,))]):
        return
    frequency, every = value(node, "frequency", 1), value(cfg, "trainer.val_check_interval")
    batches, max_steps = value(cfg, "data.steps"), value(cfg, "trainer.max_steps")  # a run's epoch: data.steps
    first = every if _int(every) else max(1, int(batches * (1.0 if every is None else every)))
    if frequency < first and frequency <= (batches if max_steps == -1 else min(batches, max_steps)):
        raise BadConfig(f"scheduler.frequency={frequency}: with scheduler.interval=step the scheduler steps on "
                        f"{monitor} from step {frequency}, and the first validation is at step {first}; use "
                        f"scheduler.frequency={first} or more, trainer.val_check_interval={frequency}, or "
                        "scheduler.interval=epoch")
