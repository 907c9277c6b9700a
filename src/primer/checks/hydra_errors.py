"""One line for a command line Hydra could not compose: the key, what is wrong, what is allowed.

Hydra refuses an unknown group or key, an unreadable override, a misplaced `+` or `~`, and says so in its
own words. `describe_hydra_error` turns that into primer's line, with a hint only where one is genuinely
close: a near spelling (primer.checks.spelling), the `+` an argument of the class under the key needs, the
choice of a group that has the key, the group a bare key is in (`max_steps` -> `trainer.max_steps`), the
`-m` a list of values needs, the quotes a path with `=` needs, an option's name where a number or null was
given. Used by the checks before a run or sweep (primer.checks.preflight), the task and primer.eval.
"""

import shlex
from contextvars import ContextVar
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from primer.checks.command_line import command, config_dir
from primer.checks.spelling import closest
from primer.checks.validation import RULES
from primer.config import key_and_value
from primer.exits import BadConfig, first_line

# Keys that lightning-hydra-template users type, and primer's way to the same thing.
HABITS = {"debug": "for a quick check of the whole run use trainer.fast_dev_run=true (or a number of steps)"}
# Choices that a Hydra plugin from an optional extra provides: missing, they mean "not installed".
EXTRA_CHOICES = {"hydra/sweeper/primer_optuna": ("the Optuna sweeper", "sweeps")}


def describe_hydra_error(error: Exception, overrides: list[str], config_name: str | None = None,
                         argv: list[str] | None = None) -> BadConfig:
    """One line for a command line Hydra could not compose: the key, what is wrong, what is allowed.
    `config_name`: the primary config, where Hydra's own is not set yet (a sweep's jobs, before they run).
    `argv`: the whole command line, where known (primer.train): its --config-dir, and the command to type."""
    token = _search_dir.set(config_dir(argv or []))
    try:
        return _describe(error, overrides, config_name, argv)
    finally:
        _search_dir.reset(token)


def _describe(error: Exception, overrides: list[str], config_name: str | None, argv: list[str] | None) -> BadConfig:
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        group, _, choice = error.missing_cfg_file.rpartition("/")
        if error.missing_cfg_file in EXTRA_CHOICES:
            plugin, extra = EXTRA_CHOICES[error.missing_cfg_file]
            return BadConfig(f"{group}={choice}: {plugin} is not installed; pip install -e '.[{extra}]'")
        if group and error.options:
            if close := closest(choice, error.options):
                return BadConfig(f"{group}={choice}: no such {group}; did you mean {group}={close}?")
            return BadConfig(f"{group}={choice}: no such {group}; choose one of {', '.join(error.options)}")
    if isinstance(error, OverrideParseException):
        return BadConfig(_unreadable(error.override))
    if isinstance(error, ConfigCompositionException):
        if isinstance(error.__cause__, OmegaConfBaseException) and error.__cause__.full_key:
            return BadConfig(_unknown_key(str(error.__cause__.full_key), overrides, config_name))
        if found := _sweep_without_multirun(overrides, argv) or _misplaced_prefix(overrides, config_name) or \
                _hydra_key_swept(overrides) or _group_added_again(str(error), overrides):
            return BadConfig(found)
    if found := _group_given_a_value(overrides, config_name):
        return BadConfig(found)
    return BadConfig(f"{first_line(error)} (command line: {' '.join(overrides) or 'no overrides'})")


# --config-dir of the command line being described: its choices and keys are part of the config
_search_dir: ContextVar[str | None] = ContextVar("search_dir", default=None)
def _sweep_without_multirun(overrides: list[str], argv: list[str] | None) -> str | None:
    """`model=two_layer,custom_relu` without -m: a list of values is a sweep, which only -m runs."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if argv is None or {"-m", "--multirun", "--cfg", "-c", "--info", "-i"} & set(argv):
        return None  # --cfg and --info show one config: a sweep is not what they take
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:
        return None
    swept = [o.input_line for o in parsed if o.is_sweep_override() and not o.is_hydra_override()]
    if not swept:
        return None
    return f"{swept[0]}: a list of values is a sweep, one job each; add -m: {command(argv, multirun=True)} " \
           f"(one value that is a list: {key_and_value(swept[0])[0]}=[...])"


def _unreadable(override: str) -> str:
    """A value Hydra's grammar reads only in quotes (a path holding `=`, like Lightning's `step=20.ckpt`, or
    a letter outside ASCII): the override as it should be typed."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    key, _, text = override.partition("=")
    quoted = f'{key}="{text}"'
    if text and not text.startswith("=") and '"' not in text:
        try:
            OverridesParser.create().parse_overrides([quoted])
        except Exception:
            pass
        else:
            return f"{override}: Hydra reads this value only in quotes; write it as {shlex.quote(quoted)}"
    return f"cannot read override '{override}': write it as key=value"


def _group_given_a_value(overrides: list[str], config_name: str | None) -> str | None:
    """`experiment=1`, `logger=null`: a config group is chosen by the name of one of its options."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:
        return None
    for override in parsed:
        value, group = override.value(), override.key_or_group
        if override.is_sweep_override() or override.is_delete() or isinstance(value, (str, list, dict)):
            continue
        if not (options := _options(group, config_name)):
            continue
        if value is None and "none" in options:
            return f"{override.input_line}: {group} is a config group; its option that turns it off is {group}=none"
        named = [o for o in options if o.startswith(override.get_value_element_as_str())]
        hint = f"did you mean {group}={named[0]}?" if len(named) == 1 else f"choose one of {', '.join(options)}"
        return f"{override.input_line}: {group} is a config group, chosen by the name of an option; {hint}"
    return None


def _group_added_again(message: str, overrides: list[str]) -> str | None:
    """`+experiment=X` for a group the defaults list has (`experiment: null`): Hydra's line speaks of its YAML
    `override` keyword; on the command line the group is chosen without the +."""
    for override in overrides:
        group, text = key_and_value(override)
        if override.startswith("+") and not override.startswith("++") and \
                message.startswith(f"Multiple values for {group}."):
            return f"{override}: the {group} group is in the config's defaults already; choose it without the +: " \
                   f"{group}={text}"
    return None


def _hydra_key_swept(overrides: list[str]) -> str | None:
    """`hydra.sweeper.params.optimizer.lr=interval(0,1)`: Hydra sweeps no key of its own; the sweep goes on the key."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:
        return None
    for override in parsed:
        if override.is_sweep_override() and override.is_hydra_override():
            key, text = key_and_value(override.input_line)
            searched = key.removeprefix("hydra.sweeper.params.")
            instead = f"sweep the key itself: {searched}={text}" if searched != key else "give it one value"
            return f"{override.input_line}: Hydra sweeps none of its own keys ({key}); {instead}"
    return None


def _unknown_key(key: str, overrides: list[str], config_name: str | None = None) -> str:
    """'no such key', with a suggestion only where one is genuinely close: the same group, a near spelling."""
    others = [o for o in overrides if key_and_value(o)[0] != key]
    try:
        composed = _compose(others, config_name)
    except Exception:
        return close_key(key, [])
    known = dotted_keys(composed)
    if close_sibling(key, known):  # a typo of a key the config has: said without importing its class
        return close_key(key, known)
    return _argument_to_add(key, composed, overrides) or _choice_without_it(key, composed, others, config_name) \
        or _without_its_group(key, known, overrides) or close_key(key, known)


def _without_its_group(key: str, known: list[str], overrides: list[str]) -> str | None:
    """`max_steps=10`: a key typed without the group it is in (trainer.max_steps), or spelled close to one."""
    if "." in key or key in HABITS:
        return None
    leaves = {k.rpartition(".")[2] for k in known if "." in k and not k.startswith("hydra.")}
    if (name := key if key in leaves else closest(key, leaves)) is None:
        return None
    full = [k for k in known if k.endswith(f".{name}") and not k.startswith("hydra.")]
    own = [k for k in full if k in RULES] or full  # data.input_dim, which model.input_dim follows
    typed = next((key_and_value(o)[1] for o in overrides if key_and_value(o)[0] == key), "")
    return f"{key}: no such key; did you mean {' or '.join(f'{k}={typed}' for k in own)}?"


def _choice_without_it(key: str, cfg: DictConfig, others: list[str], config_name: str | None) -> str | None:
    """For `scheduler.gamma=0.5` under scheduler=none: the group's choice has no such key; the choices that do."""
    from omegaconf import OmegaConf

    parent, _, name = key.rpartition(".")
    choice = (OmegaConf.select(cfg, "hydra.runtime.choices", default=None) or {}).get(parent) if parent else None
    if choice is None:
        return None
    others = [o for o in others if key_and_value(o)[0].lstrip("+~") != parent]
    having = []
    for option in _group_options(parent, config_name):
        try:
            node = _compose([*others, f"{parent}={option}"], config_name).get(parent)
        except Exception:
            continue
        if option != choice and isinstance(node, DictConfig) and name in node:
            having.append(f"{parent}={option}")
    if not having:
        return None
    return f"{key}: {parent}={choice} has no {name}; {' and '.join(having)} {'has' if len(having) == 1 else 'have'} it"


def _options(group: str, config_name: str | None) -> list[str]:
    """The choices of a config group, --config-dir's included."""
    try:
        options = _group_options(group, config_name)
    except Exception:
        return []
    extra = Path(_search_dir.get() or "/nonexistent", group)
    return sorted({*options, *(p.stem for p in extra.glob("*.yaml"))})


def _group_options(group: str, config_name: str | None) -> list[str]:
    """The choices of a config group, from the running app's search path or primer's conf/."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from primer.config import CONFIG_DIR

    if GlobalHydra.instance().is_initialized():
        return GlobalHydra.instance().config_loader().get_group_options(group)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return GlobalHydra.instance().config_loader().get_group_options(group)


def _argument_to_add(key: str, cfg: DictConfig, overrides: list[str]) -> str | None:
    """For `callbacks.model_checkpoint.monitor=val/loss`: an argument the class under it takes, which the
    config does not set yet, so Hydra wants it added with a + (or one spelled close to it)."""
    from omegaconf import OmegaConf

    from primer.checks.signatures import arguments, import_target

    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=None) if parent else None
    typed = [o for o in overrides if key_and_value(o)[0] == key and not o.startswith(("~", "+"))]
    if not isinstance(node, DictConfig) or "_target_" not in node or not typed:
        return None
    try:
        params, takes_any_keyword = arguments(import_target(str(node._target_))), False
    except Exception:
        return None
    unset = [p for p in params if p not in node]
    if name in unset:
        return f"{key}: not in the config yet; {node._target_} takes {name}: add it with +{typed[0]}"
    if close := closest(name, unset):
        return f"{key}: no such key; did you mean +{parent}.{close}={key_and_value(typed[0])[1]}?"
    if takes_any_keyword or closest(name, node):
        return None  # close_key names the one in the config
    return f"{key}: no such key; {node._target_} takes no argument {name}; drop it from the command line"


def _misplaced_prefix(overrides: list[str], config_name: str | None = None) -> str | None:
    """`+key=v` for a key the config has, or `~key` for one it lacks: which one, and how to write it."""
    for override in overrides:
        key, text = key_and_value(override)
        if override.startswith("++") or not override.startswith(("+", "~")) or "/" in key:
            continue  # ++ adds or overrides, as asked; a plain key=value or a group is not misplaced
        try:
            exists = key in dotted_keys(_compose([o for o in overrides if o != override], config_name))
        except Exception:
            continue
        if override.startswith("+") and exists:
            return f"{override}: {key} is already in the config; set it without the +: {key}={text}"
        if override.startswith("~") and not exists:
            return f"{override}: there is no {key} to remove"
    return None


def close_sibling(key: str, known: list[str]) -> str | None:
    """The key of `known` beside `key` (same parent) whose last part is spelled close to key's, if any."""
    parent, _, name = key.rpartition(".")
    siblings = [k.rpartition(".")[2] for k in known if k.rpartition(".")[0] == parent]
    # by the last part alone: a long shared prefix would make `...checkpoint.monitor` "close" to `...dirpath`
    close = closest(name, siblings)
    return f"{parent + '.' if parent else ''}{close}" if close else None


def close_key(key: str, known: list[str]) -> str:
    parent = key.rpartition(".")[0]
    if close := close_sibling(key, known):
        return f"{key}: no such key; did you mean {close}?"
    if key in HABITS:
        return f"{key}: no such key or group in primer; {HABITS[key]}"
    if parent in ("trainer", "optimizer", "callbacks", "logger"):
        return f"{key}: no such key in {parent}; add it with +{key}=... if {parent} takes it (--cfg job lists the keys)"
    return f"{key}: no such key; primer reads no such setting (--cfg job lists the keys)"


def _compose(overrides: list[str], config_name: str | None = None) -> DictConfig:
    """The config of these overrides: inside a Hydra app with its search path (`config_name`, or the running
    job's), else from primer's conf/."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from primer.config import CONFIG_DIR, CONFIG_NAME

    if GlobalHydra.instance().is_initialized():  # a sweep's jobs are checked before Hydra sets a job's config
        name = config_name or (HydraConfig.get().job.config_name if HydraConfig.initialized() else CONFIG_NAME)
        return compose(name, overrides=overrides, return_hydra_config=True)  # hydra.* keys have hints too
    searched = [f"hydra.searchpath=[file://{_search_dir.get()}]"] if _search_dir.get() else []  # --config-dir
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(CONFIG_NAME, overrides=[*overrides, *searched], return_hydra_config=True)


def dotted_keys(node: DictConfig, prefix: str = "") -> list[str]:
    """Every key of a config, nested ones dotted (`trainer.max_steps`), parents included."""
    keys = []
    for key, child in node.items_ex(resolve=False):
        keys.append(f"{prefix}{key}")
        if isinstance(child, DictConfig) and node.get(key) is not None:  # not a typed node set to null
            keys += dotted_keys(child, f"{prefix}{key}.")
    return keys

