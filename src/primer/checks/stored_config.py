"""The config stored inside a checkpoint is data: it is read only if primer's own groups could have written it.

`weights_only=True` keeps a checkpoint's pickle from running code, but the config inside it names
`_target_`s, and instantiating those runs whatever they name (`torch.load` of a pickle next to it,
`builtins.open(..., "w")`, `shutil.copy`). Before anything reads the stored config, `check` walks all
of it, lists, `_args_` and `_partial_` nodes included, and refuses:
  - a `_target_` outside ALLOWED: the targets in conf/'s groups, and the classes those groups are
    made of (torch.optim optimizers and lr schedulers, Lightning's callbacks and loggers), by exact name;
  - an interpolation (`${oc.env:...}`): primer stores its config resolved, so it is never resolved here;
  - `_recursive_` and `_convert_`, except where a group of conf/ writes them (trainer._convert_: all);
  - anything but plain values (str, numbers, bools, None, lists, string-keyed dicts);
  - stored overrides that set any of these, or Hydra's own keys.
Nothing is imported or resolved to decide: every test is on the stored strings.
"""

import functools
import inspect
from collections.abc import Collection
from pathlib import Path

from omegaconf import OmegaConf

from primer.exits import BadConfig

PLAIN = (str, int, float, bool, type(None))
REFUSED_KEYS = ("_recursive_", "_convert_")


def check(stored: object, where: str, also_allowed: Collection[str] = ()) -> None:
    """Raises BadConfig, naming the key and what is wrong, unless `stored` (checkpoint["primer"]) is a config
    that primer's groups could have written and its overrides could have been typed to primer.train.
    `also_allowed`: targets the running command's own config builds anyway (a resume's +callbacks.NAME)."""
    if not isinstance(stored, dict) or not isinstance(stored.get("config"), dict):
        raise BadConfig(f"{where}: refused: its stored config is not a config primer.train writes; nothing was run")
    allowed = allowed_targets() | set(also_allowed)
    _walk(stored["config"], "", where, allowed)
    overrides = stored.get("overrides", [])
    if not isinstance(overrides, list):
        raise BadConfig(f"{where}: refused: its stored overrides are not a list; nothing was run")
    for override in overrides:
        _check_override(override, where, allowed)


def _walk(node: object, key: str, where: str, allowed: frozenset[str]) -> None:
    if isinstance(node, dict):
        for name, child in node.items():
            child_key = f"{key}.{name}" if key else str(name)
            if not isinstance(name, str):
                _refuse(where, _shown(child_key), "a key that is not a string")
            if name in REFUSED_KEYS and not any(flag == (child_key, child) for flag in conf_flags()):  # [1] too
                _refuse(where, _shown(child_key), f"{name}, which primer's config groups never write")
            if name == "_target_" and not (isinstance(child, str) and child in allowed):
                _refuse(where, f"{_shown(child_key)}={_shown(child)}",
                        "a target primer's config groups never build")
            if name == "_partial_" and not isinstance(child, bool):
                _refuse(where, f"{_shown(child_key)}={_shown(child)}", "a _partial_ that is not true or false")
            _walk(child, child_key, where, allowed)
    elif isinstance(node, list):
        for i, child in enumerate(node):
            _walk(child, f"{key}[{i}]", where, allowed)
    elif not isinstance(node, PLAIN):
        _refuse(where, _shown(key), f"a {type(node).__name__}, not a config value")
    elif isinstance(node, str) and "${" in node:
        _refuse(where, f"{_shown(key)}={_shown(node)}", "an interpolation (primer stores its config resolved)")


def _check_override(override: object, where: str, allowed: frozenset[str]) -> None:
    """An override as Hydra's parser reads it: a dict or list value (`+callbacks.x={_target_:...}`) is walked
    like the stored tree, and a package (`@hydra.callbacks`) is a key too."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not isinstance(override, str) or not override.isprintable():
        _refuse(where, f"override {_shown(override)}", "not a command-line override")
    if "${" in override:
        _refuse(where, f"override {_shown(override)}", "an interpolation (primer stores its config resolved)")
    try:
        parsed = OverridesParser.create().parse_override(override)
    except Exception:  # Hydra's parser refused it: primer.train could not have run with it
        _refuse(where, f"override {_shown(override)}", "not a command-line override")
    key, value = parsed.key_or_group, parsed.value()
    if any(k == "hydra" or k.startswith(("hydra.", "hydra/")) for k in (key, parsed.package or "")) \
            or key.rpartition(".")[2] in REFUSED_KEYS:
        _refuse(where, f"override {_shown(override)}", "a key primer.train never stores")
    if key.rpartition(".")[2] == "_target_" and value not in allowed:
        _refuse(where, f"override {_shown(override)}", "a target primer's config groups never build")
    if isinstance(value, (dict, list)):
        _walk(value, f"override {key}", where, allowed)


def _refuse(where: str, what: str, why: str) -> None:
    raise BadConfig(f"{where}: refused: its stored config has {what}: {why}; nothing was run "
                    "(use a checkpoint written by primer.train)")


def _shown(value: object) -> str:
    """A stored value in one short line, whatever it holds (newlines included)."""
    text = value if isinstance(value, str) and value.isprintable() else repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


@functools.cache
def allowed_targets() -> frozenset[str]:
    """The `_target_`s primer's config groups can build, as exact strings."""
    return frozenset(conf_targets() | family_targets())


def conf_targets() -> set[str]:
    """Every `_target_` in conf/'s groups, less Hydra's own settings (its callbacks, launchers), which no
    checkpoint stores."""
    from primer.config import CONFIG_DIR

    targets = set()
    for path in Path(CONFIG_DIR).rglob("*.yaml"):
        if path.relative_to(CONFIG_DIR).parts[0] == "hydra":
            continue
        loaded = OmegaConf.to_container(OmegaConf.load(path))  # not resolved: only the _target_ strings are read
        targets |= targets_in({k: v for k, v in (loaded or {}).items() if k != "hydra"})
    return targets


@functools.cache
def conf_flags() -> frozenset[tuple[str, object]]:
    """The `_recursive_`/`_convert_` settings conf/'s groups write at their top, as (stored key, value):
    a group's own file decides how Hydra builds it, and a checkpoint may hold exactly that."""
    from primer.config import CONFIG_DIR

    flags = set()
    for path in Path(CONFIG_DIR).rglob("*.yaml"):
        group = path.relative_to(CONFIG_DIR).parts[0]
        loaded = OmegaConf.to_container(OmegaConf.load(path)) if group != "hydra" else None
        for name in REFUSED_KEYS:
            if isinstance(loaded, dict) and name in loaded:
                flags.add((f"{group}.{name}", loaded[name]))
    return frozenset(flags)


def targets_in(node: object) -> set[str]:
    """The string `_target_`s anywhere in a plain config tree."""
    if isinstance(node, dict):
        found = {node["_target_"]} if isinstance(node.get("_target_"), str) else set()
        return found.union(*(targets_in(child) for child in node.values()))
    if isinstance(node, list):
        return set().union(*(targets_in(child) for child in node))
    return set()


def family_targets() -> set[str]:
    """The classes primer's groups choose among, each by its public and its defining name:
    torch.optim's optimizers, its lr schedulers, Lightning's callbacks and loggers (+callbacks.NAME=...)."""
    import lightning.pytorch.callbacks as callbacks
    import lightning.pytorch.loggers as loggers
    import torch.optim
    import torch.optim.lr_scheduler as schedulers

    families = [(torch.optim, torch.optim.Optimizer),
                (schedulers, (schedulers.LRScheduler, schedulers.ReduceLROnPlateau)),
                (callbacks, callbacks.Callback), (loggers, loggers.Logger)]
    names = set()
    for module, base in families:
        for name, member in vars(module).items():
            if inspect.isclass(member) and issubclass(member, base) and not name.startswith("_"):
                names |= {f"{module.__name__}.{name}", f"{member.__module__}.{member.__qualname__}"}
    return names
