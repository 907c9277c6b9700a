"""Where the config lives, and the checks that stop a bad command line before any training.

Hydra composes the config; this module only adds what Hydra does not do: one-line errors
that name the key, what is wrong and what is allowed, range checks, and a check of every
job of a sweep before the first one starts. Nothing here imports torch or Lightning.
"""

import functools
import math
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def _config_dir() -> Path:
    packaged = Path(__file__).parent / "conf"  # a wheel ships conf/ inside the package
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "conf"


CONFIG_DIR = str(_config_dir())
CONFIG_NAME = "train"
# Makes run dir names unique (conf/train.yaml). Cached like Hydra's ${now:}, so that a job process
# that re-resolves the sweep dir (submitit, joblib) gets the launching process's dir, not its own.
OmegaConf.register_new_resolver("pid", os.getpid, replace=True, use_cache=True)

# ${cut:TEXT,N}: TEXT's first N characters (a sweep job's dir name must stay a valid file name)
OmegaConf.register_new_resolver("cut", lambda text, n: str(text)[:n], replace=True)

# The keys users type most, and what each must be.
POSITIVE_INT, POSITIVE_NUMBER, INTEGER = "a positive integer", "a positive number", "an integer"
RULES = {
    "seed": INTEGER,
    "optimizer.lr": POSITIVE_NUMBER,
    "data.batch_size": POSITIVE_INT,
    "data.input_dim": POSITIVE_INT,
    "data.output_dim": POSITIVE_INT,
    "model.hidden_dim": POSITIVE_INT,
    "trainer.max_steps": POSITIVE_INT,
}


# Choices that a Hydra plugin from an optional extra provides: missing, they mean "not installed".
EXTRA_CHOICES = {"hydra/sweeper/optuna": ("the Optuna sweeper", "sweeps")}


class BadConfig(Exception):
    """A config the run must not start with; str() is one line for the user."""


def check_command_line(argv: list[str]) -> None:
    """Composes every job that `python -m primer.train ARGV` would run and checks each one.

    Raises BadConfig on the first problem. Commands that print a config (--cfg, --info) are only
    checked to compose: printing a config with an out-of-range value is how one inspects it. Help
    is left to Hydra, as are sweepers other than the basic grid, whose jobs are chosen later.
    """
    from hydra import initialize_config_dir
    from hydra._internal.utils import get_args_parser

    from primer.scaleout import check_scale_out

    args = get_args_parser().parse_args(argv)
    if args.help or args.hydra_help or args.shell_completion:
        return
    if args.config_path or args.config_dir or args.config_name or args.experimental_rerun:
        return  # another config than ours: Hydra reports on it
    given = [flag for flag, on in [("--run", args.run), ("-m/--multirun", args.multirun), ("--cfg", args.cfg),
                                   ("--info", args.info)] if on]
    if len(given) > 1:
        raise BadConfig(f"{' and '.join(given)}: give only one of --run, -m/--multirun, --cfg, --info")
    if (args.cfg or args.info) and not args.overrides:
        return  # the shipped config composes (the tests compose it); saves --cfg job a compose
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        if args.cfg or args.info:
            _compose(args.overrides)
            return
        # A compose costs ~0.1 s: a run with no value overrides is its own base, and a sweep's
        # jobs share a few bases, so each distinct override list is composed once.
        compose_once = functools.cache(lambda overrides: _compose(list(overrides)))
        for overrides in _jobs(args.overrides, args.multirun, compose_once):
            cfg = compose_once(tuple(overrides))
            check_values(cfg, overrides, base=compose_once(tuple(_base_overrides(overrides))))
            check_scale_out(cfg, args.multirun)


def check_values(cfg: DictConfig, overrides: list[str], base: DictConfig) -> None:
    """Range rules for the keys in RULES, and: an overridden value keeps its default's type."""
    for key, rule in RULES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not _satisfies(value, rule):
            raise BadConfig(f"{key}={value}: must be {rule}")
    for override in overrides:
        key, _, _ = override.lstrip("+~").partition("=")
        default, value = OmegaConf.select(base, key, default=None), OmegaConf.select(cfg, key, default=None)
        if isinstance(default, bool) and not isinstance(value, bool):
            raise BadConfig(f"{key}={value}: must be true or false")
        if _is_number(default) and not _is_number(value):
            raise BadConfig(f"{key}={value}: must be a number")
    if cfg.trainer.accelerator in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise BadConfig(
                f"trainer.accelerator={cfg.trainer.accelerator}: no CUDA GPU is available on this machine; "
                "use trainer.accelerator=cpu or trainer.accelerator=auto"
            )
    if cfg.ckpt_path is not None:
        from primer.checkpoints import check_checkpoint  # imports torch: only when there is a checkpoint

        model = OmegaConf.to_container(cfg.model, resolve=True)
        check_checkpoint(str(cfg.ckpt_path), model, cfg.optimizer._target_)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _satisfies(value, rule: str) -> bool:
    if rule == INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if rule == POSITIVE_INT:
        return isinstance(value, int) and not isinstance(value, bool) and value > 0
    return _is_number(value) and math.isfinite(value) and value > 0


def _compose(overrides: list[str]) -> DictConfig:
    from hydra import compose
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

    try:
        return compose(CONFIG_NAME, overrides=overrides, return_hydra_config=True)
    except MissingConfigException as error:
        group, _, choice = (error.missing_cfg_file or "").rpartition("/")
        if error.missing_cfg_file in EXTRA_CHOICES:
            plugin, extra = EXTRA_CHOICES[error.missing_cfg_file]
            raise BadConfig(f"{group}={choice}: {plugin} is not installed; pip install -e '.[{extra}]'") from None
        if not group or not error.options:
            raise BadConfig(str(error).splitlines()[0]) from None
        raise BadConfig(f"{group}={choice}: no such {group}; choose one of {', '.join(error.options)}") from None
    except OverrideParseException as error:
        raise BadConfig(f"cannot read override '{error.override}': write it as key=value") from None
    except ConfigCompositionException as error:
        raise BadConfig(_describe_composition_error(error)) from None


def _describe_composition_error(error) -> str:
    """Turns Hydra's 'Could not override' into the key, what is wrong and the nearest valid key."""
    import difflib

    from hydra import compose

    message = str(error).splitlines()[0]
    if not message.startswith("Could not override '"):
        return f"{message} {error.__cause__ or ''}".strip()
    key = message.split("'")[1]
    known = _dotted_keys(compose(CONFIG_NAME))
    by_leaf = {k.rpartition(".")[2]: k for k in known}
    close = difflib.get_close_matches(key, known, n=1) or [
        by_leaf[m] for m in difflib.get_close_matches(key.rpartition(".")[2], by_leaf, n=1)
    ]
    if close:
        return f"{key}: no such key; did you mean {close[0]}?"
    return f"{key}: no such key; list the keys with --cfg job, or add a new one with +{key}=..."


def _dotted_keys(node: DictConfig, prefix: str = "") -> list[str]:
    keys = []
    for key, value in node.items_ex(resolve=False):
        path = f"{prefix}{key}"
        keys.append(path)
        if isinstance(value, DictConfig):
            keys += _dotted_keys(value, path + ".")
    return keys


def _base_overrides(overrides: list[str]) -> list[str]:
    """The overrides that pick config files (model=..., data=...), and Hydra's own (hydra.run.dir=...).

    The base they compose holds the defaults that overridden values are checked against. Hydra
    checks its own keys, so a run whose only value overrides are hydra.* is its own base: one compose.
    """
    from hydra.core.global_hydra import GlobalHydra

    loader = GlobalHydra.instance().config_loader()
    keys = [o.lstrip("+~").partition("=")[0] for o in overrides]
    return [o for o, key in zip(overrides, keys) if key.startswith("hydra.") or loader.get_group_options(key)]


def _jobs(overrides: list[str], multirun: bool, compose_once) -> list[list[str]]:
    """The override list of each job: one for a run, one per grid point for a basic sweep.

    compose_once(tuple_of_overrides) composes, or returns what it composed for those overrides before.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not multirun:
        return [overrides]
    loader = GlobalHydra.instance().config_loader()
    try:
        parsed = OverridesParser.create(config_loader=loader).parse_overrides(overrides)
    except Exception as error:
        raise BadConfig(str(error).splitlines()[0]) from None
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    sweeper = OmegaConf.select(compose_once(tuple(fixed)), "hydra.sweeper._target_")
    if not str(sweeper).endswith("BasicSweeper"):
        return [fixed]  # e.g. Optuna: its trials are drawn during the sweep
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]

