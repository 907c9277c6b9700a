"""The checks Hydra runs before it writes anything: a run's config, or every job of a grid sweep.

`CheckBeforeRunning` is a Hydra callback (conf/train.yaml, hydra.callbacks): Hydra composes the
config, calls `on_run_start` / `on_multirun_start`, and only then makes the run or sweep dir. A
rejected command thus leaves nothing behind, whichever way it was started (`python -m primer.train`,
`primer-train`, `--config-dir`, `--config-name`), an existing run dir keeps its files, and a sweep
with a bad job starts none. What happens only once the run dir exists (a signal during set-up, an
error Lightning raises before the first step) ends with that dir removed (primer.exits). Jobs that
Hydra starts elsewhere (submitit, Optuna trials) are checked by the task itself (primer.cli.task).
`describe_hydra_error` turns Hydra's own rejections (unknown group, unknown key, unreadable override)
into one line.
"""

import difflib
import itertools
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict

from primer import exits
from primer.config import key_and_value
from primer.exits import BadConfig, EndCommand, first_line

# Keys that lightning-hydra-template users type, and primer's way to the same thing.
HABITS = {"debug": "for a quick check of the whole run use trainer.fast_dev_run=true (or a number of steps)"}
# Choices that a Hydra plugin from an optional extra provides: missing, they mean "not installed".
EXTRA_CHOICES = {"hydra/sweeper/primer_optuna": ("the Optuna sweeper", "sweeps")}


class CheckBeforeRunning(Callback):
    """Stops a bad run, or a sweep with any bad job, before its dir is made."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        _check_or_end(config, multirun=False)
        run_dir = Path(config.hydra.run.dir)
        created = [d for d in [run_dir, *run_dir.parents] if not d.exists()]
        if created:  # the run dir and any parents Hydra is about to make (outputs/runs/ on a first run)
            exits.remove_if_it_ends_early(created[-1])

    def on_multirun_start(self, config: DictConfig, config_name: str | None = None, **kwargs) -> None:
        _check_sweep_counts(config.hydra)
        for job in grid_jobs(config, config_name):
            _check_or_end(job, multirun=True)


def checked_before_running(hydra_cfg: DictConfig) -> bool:
    """Whether CheckBeforeRunning has checked the job about to run, in this process: a run, or a grid job
    under the basic launcher. Jobs started elsewhere (submitit, joblib workers) and a search's trials
    (drawn during the sweep) are checked by the task (primer.cli.task)."""
    configured = any(str(c.get("_target_", "")).endswith(f"preflight.{CheckBeforeRunning.__name__}")
                     for c in (hydra_cfg.get("callbacks") or {}).values())
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return configured
    in_this_process = str(hydra_cfg.launcher._target_).endswith("BasicLauncher")
    return configured and in_this_process and _is_grid(hydra_cfg.sweeper)


def _is_grid(sweeper: DictConfig) -> bool:
    return str(sweeper._target_).endswith("BasicSweeper")


def check_job(config: DictConfig, multirun: bool) -> None:
    """primer's rules, the real signatures and where the job runs; BadConfig says what is wrong."""
    from primer.checks.scaleout import check_scale_out
    from primer.checks.validation import check

    check(config)
    check_scale_out(config, multirun)


def _check_or_end(config: DictConfig, multirun: bool) -> None:
    try:
        check_job(config, multirun)
    except BadConfig as error:
        raise EndCommand(error) from None  # Hydra would turn an Exception from a callback into a warning


# (node, key, the values that run, what the line says): counts with which a sweep runs no job, never ends, or
# fails only once its dir exists
SWEEP_COUNTS = [
    ("sweeper", "n_trials", lambda n: n >= 1, "must be a positive integer (the trials the search runs)"),
    ("sweeper", "n_jobs", lambda n: n >= 1, "must be a positive integer (the trials asked and run together)"),
    ("sweeper", "max_batch_size", lambda n: n >= 1, "must be a positive integer, or null for all jobs in one batch"),
    ("launcher", "n_jobs", lambda n: n != 0, "must be a number of processes, or -1 for one per core (joblib)"),
    # 0 reads as unset: every job would take every core, and jobs that run together would fight over them
    ("launcher", "cpus_per_task", lambda n: n >= 1, "must be a positive integer (the cores each job is given)"),
]


def _check_sweep_counts(hydra_cfg: DictConfig) -> None:
    for node, key, runs, rule in SWEEP_COUNTS:
        value = hydra_cfg[node].get(key)
        if isinstance(value, int) and not isinstance(value, bool) and not runs(value):
            raise EndCommand(BadConfig(f"hydra.{node}.{key}={value}: {rule}"))


def grid_jobs(config: DictConfig, config_name: str | None) -> list[DictConfig]:
    """The config of every job a basic (grid) sweep will run; the base config for other sweepers,
    whose jobs are drawn during the sweep (each is checked when it starts)."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = list(config.hydra.overrides.task)
    if not _is_grid(config.hydra.sweeper):
        return [config]
    params = config.hydra.sweeper.get("params") or {}
    overrides += [f"{key}={value}" for key, value in params.items()]
    loader = GlobalHydra.instance().config_loader()  # glob(*) over a group needs its options
    try:
        parsed = OverridesParser.create(config_loader=loader).parse_overrides(overrides)
    except Exception as error:
        raise EndCommand(describe_hydra_error(error, overrides, config_name)) from None
    for override in parsed:
        if override.is_interval_sweep():  # Hydra's basic sweeper would say only that it cannot
            raise EndCommand(BadConfig(f"{override.input_line}: a grid sweep takes values (a,b), range() or choice(); "
                                       f"interval() is a search space: add hparams_search=optuna to draw "
                                       f"{override.key_or_group} from it"))
    choices = [[o.input_line] if not o.is_sweep_override() else
               [f"{'+' if o.is_add() else ''}{o.key_or_group}={v}" for v in o.sweep_string_iterator()]
               for o in parsed]
    for override, values in zip(parsed, choices):
        if not values:  # a sweep of no jobs would end at once, exit 0, with an empty summary
            raise EndCommand(BadConfig(_sweeps_nothing(override, loader)))
    jobs = []
    for job in itertools.product(*choices):
        try:
            cfg = compose(config_name, overrides=list(job), return_hydra_config=True)
        except Exception as error:
            raise EndCommand(_sweep_as_typed(describe_hydra_error(error, list(job), config_name), job, parsed)) from None
        with open_dict(cfg):
            # a compose inside the app gives run mode's launcher and sweeper; the sweep's are these
            cfg.hydra.launcher, cfg.hydra.sweeper = config.hydra.launcher, config.hydra.sweeper
        jobs.append(cfg)
    return jobs


def _sweeps_nothing(override, loader) -> str:
    from hydra.core.override_parser.types import ValueType

    key = override.key_or_group
    if override.value_type == ValueType.GLOB_CHOICE_SWEEP:
        if options := loader.get_group_options(key):
            return f"{override.input_line}: matches no {key}; choose from {', '.join(options)}"
        return (f"{override.input_line}: glob() picks options of a config group, and {key} is none; list the values "
                f"to sweep: {key}=a,b")
    return f"{override.input_line}: sweeps no value; give it one or more"


def _sweep_as_typed(bad: BadConfig, job: tuple[str, ...], parsed: list) -> BadConfig:
    """A hint about a swept key, worked out for one job, ends in that job's value (`add it with +key=a`, `did you
    mean +key=a?`); the command to type is the sweep as typed (`+key=a,b`)."""
    message = str(bad)
    for item, override in zip(job, parsed):
        key, value = key_and_value(item)
        about_it = message.startswith((f"{key.lstrip('+')}:", f"{item}:"))
        for mark in ("", "?"):
            if override.is_sweep_override() and about_it and message.endswith(f"={value}{mark}"):
                typed = key_and_value(override.input_line)[1]
                return BadConfig(f"{message[:-len(f'={value}{mark}')]}={typed}{mark}")
    return bad


def describe_hydra_error(error: Exception, overrides: list[str], config_name: str | None = None) -> BadConfig:
    """One line for a command line Hydra could not compose: the key, what is wrong, what is allowed.
    `config_name`: the primary config, where Hydra's own is not set yet (a sweep's jobs, before they run)."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        group, _, choice = error.missing_cfg_file.rpartition("/")
        if error.missing_cfg_file in EXTRA_CHOICES:
            plugin, extra = EXTRA_CHOICES[error.missing_cfg_file]
            return BadConfig(f"{group}={choice}: {plugin} is not installed; pip install -e '.[{extra}]'")
        if group and error.options:
            return BadConfig(f"{group}={choice}: no such {group}; choose one of {', '.join(error.options)}")
    if isinstance(error, OverrideParseException):
        return BadConfig(f"cannot read override '{error.override}': write it as key=value")
    if isinstance(error, ConfigCompositionException):
        if isinstance(error.__cause__, OmegaConfBaseException) and error.__cause__.full_key:
            return BadConfig(_unknown_key(str(error.__cause__.full_key), overrides, config_name))
        if found := _misplaced_prefix(overrides, config_name) or _hydra_key_swept(overrides) or \
                _group_added_again(str(error), overrides):
            return BadConfig(found)
    return BadConfig(f"{first_line(error)} (command line: {' '.join(overrides) or 'no overrides'})")


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
        or close_key(key, known)


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

    from primer.checks.signatures import import_target, parameters

    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=None) if parent else None
    typed = [o for o in overrides if key_and_value(o)[0] == key and not o.startswith(("~", "+"))]
    if not isinstance(node, DictConfig) or "_target_" not in node or not typed:
        return None
    try:
        params, takes_any_keyword = parameters(import_target(str(node._target_)))
    except Exception:
        return None
    unset = [p for p in params if p not in node]
    if name in unset:
        return f"{key}: not in the config yet; {node._target_} takes {name}: add it with +{typed[0]}"
    if close := difflib.get_close_matches(name, unset, n=1, cutoff=0.8):
        return f"{key}: no such key; did you mean +{parent}.{close[0]}={key_and_value(typed[0])[1]}?"
    if takes_any_keyword or difflib.get_close_matches(name, [str(k) for k in node], n=1, cutoff=0.8):
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
    close = difflib.get_close_matches(name, siblings, n=1, cutoff=0.8)
    return f"{parent + '.' if parent else ''}{close[0]}" if close else None


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
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(CONFIG_NAME, overrides=overrides, return_hydra_config=True)


def dotted_keys(node: DictConfig, prefix: str = "") -> list[str]:
    """Every key of a config, nested ones dotted (`trainer.max_steps`), parents included."""
    keys = []
    for key, child in node.items_ex(resolve=False):
        keys.append(f"{prefix}{key}")
        if isinstance(child, DictConfig) and node.get(key) is not None:  # not a typed node set to null
            keys += dotted_keys(child, f"{prefix}{key}.")
    return keys

