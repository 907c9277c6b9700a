"""A checkpoint is checked before eval reads it or a run resumes from it: loaded `weights_only` (pickled code is
refused, never run), its fields as Lightning writes them, its stored config as data: nothing in it is imported,
resolved or built to decide; one walk compares its strings with what primer's config groups write."""

import contextlib
import functools
import inspect
import itertools
import logging
import os
import pickle
import re
import shlex
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from primer.checks import entries, failing_closed, refused
from primer.config import CONFIG_DIR, task_config
from primer.exits import BadConfig, first_line
from primer.run.checkpoint_io import PATH_STATE
from primer.run.checkpoints import CONFIG_KEY, INTERRUPTED, checkpoint_dirs, checkpoint_to_resume

# What Lightning resumes a fit's steps from (it never reads global_step back): the optimizer steps of automatic and
# of manual optimization, and the batches that stepped.
AUTOMATIC = ("loops", "fit_loop", "epoch_loop.automatic_optimization.optim_progress", "optimizer", "step", "total",
             "completed")
MANUAL = ("loops", "fit_loop", "epoch_loop.manual_optimization.optim_step_progress", "total", "completed")
BATCHES = ("loops", "fit_loop", "epoch_loop.state_dict", "_batches_that_stepped")
PLAIN = (str, int, float, bool, type(None))
FLAGS = ("_recursive_", "_convert_")  # how Hydra builds a node: allowed only where a group of conf/ writes them
GROUPS = ("model", "data", "optimizer", "trainer")  # what eval builds and a resume compares


def load_checkpoint(path: str | Path, where: str | None = None, own_targets=()) -> dict:
    """The checkpoint at `path`, checked; BadConfig, after `where`, says why not. `own_targets`: check_stored_config."""
    where = where or f"ckpt_path={path}"
    if not Path(path).is_file():
        raise BadConfig(f"{where}: no such file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001  any file torch cannot read is not a checkpoint
        if isinstance(error, pickle.UnpicklingError) and (found := re.search(r"GLOBAL (\S+)", str(error))):
            raise refused(where, f"it holds pickled Python objects that could run code ({found[1]}); "
                          "loaded with weights_only=True") from None
        raise BadConfig(f"{where}: not a checkpoint ({first_line(error)})") from None
    with failing_closed(where):
        if not isinstance(checkpoint, dict) or not isinstance(weights := checkpoint.get("state_dict"), dict):
            raise refused(where, f"its state_dict is a {type(weights).__name__}, not weights by name")
        if bad := next(((k, v) for k, v in weights.items() if not (isinstance(k, str) and torch.is_tensor(v))), None):
            raise refused(where, f"its state_dict has {bad[0]!r}: a {type(bad[1]).__name__}, not a tensor")
        if CONFIG_KEY in checkpoint:
            check_stored_config(checkpoint[CONFIG_KEY], where, own_targets)
        _check_callback_states(checkpoint.get("callbacks", {}), where)
    return checkpoint


def _check_callback_states(states: object, where: str) -> None:
    # ModelCheckpoint restores the files its state names and deletes them after its next save where it judges them its
    # own (`<dirpath>/../../file` and `local:///dir` pass); what it writes is a plain absolute path
    if not isinstance(states, dict) or not all(isinstance(state, dict) for state in states.values()):
        raise refused(where, "its callbacks are not callback states by name")
    for state_key, state in states.items():
        for name in PATH_STATE:
            for path in state[name] if isinstance(state.get(name), dict) else [state.get(name)]:
                if path not in ("", None) and not (isinstance(path, str) and os.path.isabs(path)
                                                   and os.path.normpath(path) == path):
                    raise refused(where, f"its {str(state_key).partition('{')[0]} state has {name} {path!r}, not a "
                                  "plain absolute path as ModelCheckpoint writes: Lightning trusts it, and a resume "
                                  "would delete it")


def check_stored_config(stored: object, where: str, also_allowed=()) -> None:
    """`stored` (checkpoint["primer"]) is what primer.train writes, or targets the command builds (`also_allowed`)."""
    config = stored.get("config") if isinstance(stored, dict) else None
    if not isinstance(config, dict) or not isinstance(overrides := stored.get("overrides", []), list):
        raise refused(where, "its stored config is not a config primer.train writes")
    if missing := next((group for group in GROUPS if not isinstance(config.get(group), dict)), None):
        raise refused(where, f"its stored config has no {missing} group")
    allowed = written_by_primer() | {("_target_", target) for target in also_allowed}
    for key, value in itertools.chain(entries(config), (e for o in overrides for e in entries(_parsed(o, where)))):
        if why := _wrong(key, value, allowed):
            raise refused(where, f"its stored config has {_shown(key)}={_shown(value)}: {why}")
        # eval builds GROUPS: a class there only where a group of conf/ puts one (its top), unless this run builds it
        if key.partition(".")[0] in GROUPS and key.rpartition(".")[2] == "_target_" and (key, value) not in allowed \
                and value not in also_allowed:
            raise refused(where, f"its stored config has {_shown(key)}={_shown(value)}: a _target_ primer's config "
                          "groups never write there")


def _wrong(key: str, value: object, allowed: frozenset) -> str | None:
    name = key.rpartition(".")[2]
    if not isinstance(value, (dict, list, *PLAIN)):
        return f"a {type(value).__name__}, not a config value"
    if isinstance(value, dict) and not all(isinstance(k, str) for k in value):
        return "a key that is not a string"
    if isinstance(value, str) and "${" in value:
        return "an interpolation (primer stores its config resolved)"
    if name in ("_target_", *FLAGS) and (not isinstance(value, PLAIN) or (
            name if name == "_target_" else key, value) not in allowed):
        return f"a {name} primer's config groups never write"
    if name == "_partial_" and not isinstance(value, bool):
        return "a _partial_ that is not true or false"
    return None


def _parsed(override: object, where: str) -> dict:
    """An override as Hydra's parser reads it, as a tree to walk: {"override KEY": value}."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    why, parsed = "not a command-line override", None
    with contextlib.suppress(Exception):  # Hydra's parser refused it: primer.train could not have run with it
        parsed = OverridesParser.create().parse_override(override) if str(override).isprintable() else None
    if parsed and "hydra" in {k.replace("/", ".").partition(".")[0] for k in (parsed.key_or_group, parsed.package)
                              if k}:
        why, parsed = "a key primer.train never stores", None
    if parsed is None:
        raise refused(where, f"its stored config has override {_shown(override)}: {why}")
    return {f"override {parsed.key_or_group}": parsed.value()}


def targets_in(node: object) -> set[str]:
    return {v for k, v in entries(node) if f".{k}".endswith("._target_") and isinstance(v, str)}


def _shown(value: object) -> str:
    """A stored value in one short line, whatever it holds (newlines included)."""
    text = value if isinstance(value, str) and value.isprintable() else repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


@functools.cache
def written_by_primer() -> frozenset[tuple[str, object]]:
    """("_target_", T) of conf/'s targets and the optimizers, schedulers, callbacks and loggers; ("G._target_", T) of
    what stands at a group's top; (KEY, V) of FLAGS."""
    import lightning.pytorch.callbacks as callbacks
    import lightning.pytorch.loggers as loggers
    import torch.optim
    import torch.optim.lr_scheduler as schedulers

    allowed = set()
    for path in Path(CONFIG_DIR).rglob("*.yaml"):  # Hydra's own settings (its callbacks, launchers) are never stored
        group = path.relative_to(CONFIG_DIR).parts[0]
        tree = {k: v for k, v in (OmegaConf.to_container(OmegaConf.load(path)) or {}).items() if k != "hydra"}
        if group != "hydra":
            allowed |= {("_target_", t) for t in targets_in(tree)}
            allowed |= {(f"{group}.{k}", tree[k]) for k in FLAGS if k in tree}
            # where a group's class stands: `_target_` of data/random.yaml, `model._target_` of model/two_layer.yaml
            allowed |= {(f"{k}._target_", v["_target_"]) for k, v in {group: tree, **tree}.items()
                        if isinstance(v, dict) and "_target_" in v}
    families = [(torch.optim, torch.optim.Optimizer), (callbacks, callbacks.Callback), (loggers, loggers.Logger),
                (schedulers, (schedulers.LRScheduler, schedulers.ReduceLROnPlateau))]
    for module, base in families:
        for name, member in vars(module).items():
            if inspect.isclass(member) and issubclass(member, base) and not name.startswith("_"):
                names = (f"{module.__name__}.{name}", f"{member.__module__}.{member.__qualname__}")
                allowed |= {("_target_", found) for found in names}
                if module is torch.optim:  # optimizer._target_=torch.optim.AdamW
                    allowed |= {("optimizer._target_", found) for found in names}
    return frozenset(allowed)



def check_resume(cfg: DictConfig) -> None:
    """BadConfig unless cfg.ckpt_path holds this model and optimizer, Lightning's counters, steps to go, a usable lr."""
    from hydra.utils import instantiate

    from primer.tutorial.nets import HandGradientNet

    if (path := checkpoint_to_resume(cfg)) is None:
        return  # ckpt_path=last, and no checkpoint yet: training starts from scratch, as in Lightning
    where = f"ckpt_path={cfg.ckpt_path}" + (f" ({path})" if cfg.ckpt_path in ("last", "hpc") else "")
    with failing_closed(where):
        # a target beyond primer's groups (+callbacks.NAME._target_=...) is accepted where this run builds it anyway
        checkpoint = load_checkpoint(path, where, targets_in(OmegaConf.to_container(task_config(cfg))))
        stored = checkpoint.get(CONFIG_KEY, {"config": {"model": {}, "optimizer": {}}, "overrides": []})
        target = cfg.optimizer._target_
        then = {f"model.{k}": v for k, v in stored["config"]["model"].items()}
        then["optimizer._target_"] = stored["config"]["optimizer"].get("_target_", target)
        now = {f"model.{k}": v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items()}
        now["optimizer._target_"] = target
        hint = f"resume with the overrides it was trained with: {shlex.join(stored['overrides']) or '(none)'}"
        if key := next((k for k in now if k in then and then[k] != now[k]), None):
            raise BadConfig(f"{where}: made with {key}={then[key]}, this run has {key}={now[key]}; {hint}")
        net = instantiate(cfg.model)
        expected = {f"net.{k}": tuple(v.shape) for k, v in net.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
        if key := next((k for k in sorted(expected.keys() | found.keys()) if expected.get(k) != found.get(k)), None):
            raise BadConfig(f"{where}: made by a different model or shape: {key} is {found.get(key)} there, "
                            f"{expected.get(key)} here; {hint}")
        step = _counter(checkpoint, ("global_step",), where)
        automatic = not isinstance(net, HandGradientNet)  # as primer.run.system.Regression decides
        # the steps of the other kind of optimization: none; the batches that stepped: one fewer inside a step
        for keys, allowed in [(AUTOMATIC if automatic else MANUAL, (step,)), (MANUAL if automatic else AUTOMATIC, (0,)),
                              (BATCHES, (step - 1, step))]:
            if (counted := _counter(checkpoint, keys, where)) not in allowed:
                raise refused(where, f"its {'.'.join(keys)} is {counted} and its global_step {step}: counters "
                              "Lightning never writes together (a resume starts at the loops' count)")
        if (max_steps := cfg.trainer.max_steps) != -1 and max_steps <= step:
            raise BadConfig(f"trainer.max_steps={max_steps}: {where} is at step {step}; "
                            f"a resume needs trainer.max_steps>{step}")
        then_lr, now_lr = stored["config"]["optimizer"].get("lr"), cfg.optimizer.get("lr")
        if cfg.get("scheduler") and then_lr is not None and then_lr != now_lr:
            raise BadConfig(f"optimizer.lr={now_lr}: {where} was trained with optimizer.lr={then_lr}, and with a "
                            "scheduler the lr follows the scheduler's restored state; resume with its lr or start a "
                            "new run")


def _counter(checkpoint: dict, keys: tuple[str, ...], where: str) -> int:
    node = checkpoint
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, int) or isinstance(node, bool) or node < 0:
        raise refused(where, f"its {'.'.join(keys)} is {node!r}, not a count of steps")
    return node


def resume_from(cfg: DictConfig) -> str | None:
    """The checkpoint Trainer.fit resumes from; a keyword's file is checked again (a sweep job's dir is known now)."""
    path, typed = checkpoint_to_resume(cfg), cfg.get("ckpt_path")
    if typed == "last" and path is None:
        logging.getLogger(__name__).warning(
            f"ckpt_path=last: no last*.ckpt or {INTERRUPTED} in {' or '.join(map(str, checkpoint_dirs(cfg)))}; "
            "training starts from scratch, as Lightning does (+callbacks.model_checkpoint.save_last=true keeps a "
            "last.ckpt)")
    elif typed in ("last", "hpc"):
        check_resume(cfg)
    return path
