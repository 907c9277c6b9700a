"""A checkpoint's stored config is data, read only where primer's own groups could have written it: nothing in it
is imported, resolved or built to decide; one walk compares its strings with one table."""

import functools
import inspect
import itertools
from pathlib import Path

from omegaconf import OmegaConf

from primer.checks import entries, refused
from primer.config import CONFIG_DIR

PLAIN = (str, int, float, bool, type(None))
FLAGS = ("_recursive_", "_convert_")  # how Hydra builds a node: allowed only where a group of conf/ writes them
GROUPS = ("model", "data", "optimizer", "trainer")  # what eval builds and a resume compares


def check(stored: object, where: str, also_allowed=()) -> None:
    """`stored` (checkpoint["primer"]) is what primer.train writes, or targets the command builds (`also_allowed`)."""
    config = stored.get("config") if isinstance(stored, dict) else None
    if not isinstance(config, dict) or not isinstance(overrides := stored.get("overrides", []), list):
        raise refused(where, "its stored config is not a config primer.train writes")
    if missing := next((group for group in GROUPS if not isinstance(config.get(group), dict)), None):
        raise refused(where, f"its stored config has no {missing} group")
    allowed = table() | {("_target_", target) for target in also_allowed}
    for key, value in itertools.chain(entries(config), (e for o in overrides for e in entries(_parsed(o, where)))):
        if why := _wrong(key, value, allowed):
            raise refused(where, f"its stored config has {_shown(key)}={_shown(value)}: {why}")


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
    try:
        parsed = OverridesParser.create().parse_override(override) if str(override).isprintable() else None
    except Exception:  # noqa: BLE001  Hydra's parser refused it: primer.train could not have run with it
        pass
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
def table() -> frozenset[tuple[str, object]]:
    """("_target_", T) of conf/'s targets and the optimizers, schedulers, callbacks and loggers; (KEY, V) of FLAGS."""
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
    families = [(torch.optim, torch.optim.Optimizer), (callbacks, callbacks.Callback), (loggers, loggers.Logger),
                (schedulers, (schedulers.LRScheduler, schedulers.ReduceLROnPlateau))]
    for module, base in families:
        for name, member in vars(module).items():
            if inspect.isclass(member) and issubclass(member, base) and not name.startswith("_"):
                allowed |= {("_target_", f"{module.__name__}.{name}"),
                            ("_target_", f"{member.__module__}.{member.__qualname__}")}
    return frozenset(allowed)
