"""A primer.train command line as Hydra reads it (flags, then overrides), and Hydra's refusal of one in one line,
`KEY: REASON; HINT`: Hydra's own reason and hint, and "did you mean" where the config has a close key or option."""

import contextlib
import os
import pathlib
import re
import shlex

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf

from primer.checks import entries
from primer.checks.spelling import closest
from primer.config import CONFIG_DIR, CONFIG_NAME, hydra_quoted, key_and_value
from primer.exits import BadConfig

FLAGS_WITH_VALUE = {"--cfg", "-c", "--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp", "--package",
                    "-p", "--experimental-rerun"}  # Hydra's flags that take a value; the other arguments are overrides
NOT_INSTALLED = {"hydra/sweeper/primer_optuna": "the Optuna sweeper is not installed; pip install -e '.[sweeps]'"}


def describe_hydra_error(error: Exception, overrides: list[str], config_name: str | None = None,
                         argv: list[str] | None = None) -> BadConfig:
    """`config_name`: the primary config inside a running app (a sweep's jobs); `argv`: the command line typed."""
    if isinstance(error, MissingConfigException) and error.options:  # Hydra lists the group's options
        group, _, choice = error.missing_cfg_file.rpartition("/")
        close = closest(choice, error.options)
        hint = f"did you mean {group}={close}?" if close else f"choose one of {', '.join(error.options)}"
        return BadConfig(f"{group}={choice}: {NOT_INSTALLED.get(error.missing_cfg_file, f'no such {group}; {hint}')}")
    text = str(error).split("\nConfig search path")[0] or repr(error)
    reason, *hints = [f"{s[:1].lower()}{s[1:]}".rstrip(".") for s in map(str.strip, text.splitlines()) if s.strip("^")]
    mentioned = [o for o in overrides if re.search(rf"(?<![\w.]){re.escape(key_and_value(o)[0])}(?![\w.])", text)]
    typed = getattr(error, "override", None) or [None, *mentioned][-1]  # of two with one key, Hydra applied the first
    if isinstance(cause := error.__cause__, (KeyError, AttributeError)) and (key := getattr(cause, "full_key", None)):
        reason, typed = "no such key", key  # OmegaConf's ConfigKeyError: Hydra's hint is the `+` that adds it
        group, _, rest = key.partition(".")  # `scheduler.gamma` under scheduler=none: the options that set it
        if rest and (having := _options(group, rest, argv)):
            hints = [f"{' or '.join(f'{group}={o}' for o in having)} has it"]
        with contextlib.suppress(Exception):  # where the config composes without it
            composed = _compose([o for o in overrides if key_and_value(o)[0] != key], config_name, argv)
            known = [k for k, _ in entries(OmegaConf.to_container(composed)) if "[" not in k]  # keys, not items
            hints = [f"did you mean {close}?"] if (close := close_sibling(key, known)) else hints
    elif key := getattr(cause, "full_key", None):  # a value OmegaConf cannot convert to the key's type
        reason, typed, hints = str(cause).splitlines()[0], key, []
    elif isinstance(error, OverrideParseException):
        key, _, value = typed.partition("=")
        reason, hints = "not an override Hydra can read", hints[-1:]
        if value and not value.startswith("=") and not _unreadable(quoted := f"{key}={hydra_quoted(value)}"):
            reason, hints = "a value Hydra reads only in quotes", [f"write it as {shlex.quote(quoted)}"]  # step=20.ckpt
        elif value and (why := _unreadable(f"{key}=1")):  # `hydra/../x.y`: no quotes make it a key
            reason = f"not a key Hydra can read ({why})"
    elif typed is None:  # `optimizer=2`: Hydra names no key; a config group given a number or null, not an option
        typed = next((o.input_line for o in OverridesParser.create().parse_overrides(overrides) if
                      type(o.value()) in (int, float, bool, type(None)) and _options(o.key_or_group, argv=argv)), None)
        if typed:  # the one option that starts so (experiment=1), else all, as Hydra lists them for a name
            options = _options(group := key_and_value(typed)[0], argv=argv)
            hits = [o for o in options if o.startswith(key_and_value(typed)[1])]
            hints = [f"did you mean {group}={hits[0]}?" if len(hits) == 1 else "choose one of " + ", ".join(options)]
    elif typed.startswith("+") and reason.startswith("multiple values for"):  # Hydra's hint is YAML's `override`
        hints = [f"the group has a default already; choose it without the +: {typed[1:]}"]
        reason = reason.split(". ")[0]
    elif argv is not None and not {"-m", "--multirun", "--cfg", "-c", "--info", "-i"} & set(argv) and \
            OverridesParser.create().parse_override(typed).is_sweep_override():  # Hydra's hint names no -m
        hints = [f"a list of values is a sweep, one job each; add -m: {command(argv, multirun=True)}"]
    return BadConfig("; ".join([f"{typed}: {reason}" if typed else reason, *hints]))


def _options(group: str, having: str = "", argv: list[str] | None = None) -> list[str]:
    """A group's options on Hydra's search path, as Hydra lists them: a running app's (a sweep's), else primer's conf/
    and a --config-dir; `having`: those whose own file sets that key."""
    dirs = [CONFIG_DIR, config_dir(argv or [])]  # Hydra reads a name from the first dir that has it
    if GlobalHydra.instance().is_initialized():
        found = GlobalHydra.instance().config_loader().get_search_path().get_path()
        dirs = [path for e in found if "://" not in (path := e.path.removeprefix("file://"))]  # not pkg://
    files = {f.stem: f for where in reversed(dirs) if where for f in pathlib.Path(where, group).glob("*.yaml")}
    return [name for name, f in sorted(files.items())
            if not having or having in dict(entries(OmegaConf.to_container(OmegaConf.load(f))))]


def _unreadable(override: str) -> str | None:
    """Hydra's reason it cannot read `override`; None where it can."""
    try:
        OverridesParser.create().parse_override(override)
    except HydraException as error:
        return str(error)
    return None


def close_sibling(key: str, known: list[str]) -> str | None:
    """A key of `known` beside `key` spelled close to it; for a bare key, the one or two dotted keys it may mean."""
    parent, _, name = key.rpartition(".")
    if close := closest(name, [k.rpartition(".")[2] for k in known if k.rpartition(".")[0] == parent]):
        return f"{parent}.{close}".lstrip(".")
    dotted = [k for k in known if "." in k and not parent and not k.startswith("hydra.")]
    leaf = closest(name, {k.rpartition(".")[2] for k in dotted})
    return " or ".join(found) if len(found := [k for k in dotted if k.rpartition(".")[2] == leaf]) <= 2 else None


def _compose(overrides: list[str], config_name: str | None, argv: list[str] | None) -> DictConfig:
    """The config of these overrides: the running app's (a sweep's jobs), else primer's conf/ and --config-dir."""
    searched = [f"hydra.searchpath=[file://{found}]"] if (found := config_dir(argv or [])) else []
    inside = GlobalHydra.instance().is_initialized()
    with contextlib.nullcontext() if inside else initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name or CONFIG_NAME, overrides=[*overrides, *searched], return_hydra_config=True)


def config_dir(argv: list[str]) -> str | None:
    """The --config-dir a command line adds to primer's conf/, as an absolute path."""
    following = dict(zip(argv, argv[1:])) | dict(a.split("=", 1) for a in argv if a.startswith("--config-dir="))
    return os.path.abspath(found) if (found := following.get("--config-dir") or following.get("-cd")) else None


def command(args: list[str], multirun: bool = False) -> str:
    return shlex.join(["python", "-m", "primer.train", *(["-m"] if multirun else []), *args])


def flags_after_overrides(argv: list[str]) -> BadConfig | None:
    values = {i + 1 for i, arg in enumerate(argv) if arg in FLAGS_WITH_VALUE}
    overrides = [i for i, arg in enumerate(argv) if not arg.startswith("-") and i not in values]
    if late := [a for i, a in enumerate(argv) if a.startswith("-") and overrides and overrides[0] < i < overrides[-1]]:
        typed = [a for i, a in enumerate(argv) if i not in overrides] + [argv[i] for i in overrides]  # argparse's order
        return BadConfig(f"{late[0]}: Hydra reads its flags before the overrides; put it first: {command(typed)}")
