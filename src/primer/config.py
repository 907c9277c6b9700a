"""Where the config lives, its resolvers (the run and sweep dirs' names among them), and override text.
Imported by every entry point before Hydra starts."""

import contextlib
import itertools
import os
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

_PACKAGED = Path(__file__).parent / "conf"  # a wheel ships conf/ inside the package
CONFIG_DIR = str(_PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[2] / "conf")
CONFIG_NAME = "train"


def key_and_value(override: str) -> tuple[str, str]:
    """("trainer.max_steps", "5") of `trainer.max_steps=5`, `+trainer.max_steps=5` or `++...`; ("key", "") of `~key`."""
    key, _, text = override.lstrip("+~").partition("=")
    return key, text


def hydra_quoted(text: str, quote: str = '"') -> str:
    """TEXT as a quoted Hydra value, read back as TEXT (unquoted, a `,` or `=` makes a sweep or a bad override)."""
    escaped = re.sub(rf"(\\*)({quote}|$)", lambda m: m[1] * 2 + ("\\" + m[2] if m[2] else ""), text)
    return quote + escaped.replace("${", "\\${") + quote


def override(key: str, text: str) -> str:
    """`key=TEXT`, TEXT quoted where it holds more than letters, digits and `_-+./:@%~`."""
    return f"{key}={text}" if re.fullmatch(r"[\w\-+./:@%~]+", text) else f"{key}={hydra_quoted(text)}"


def task_config(cfg: DictConfig) -> DictConfig:
    return OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])


def launch_dir() -> str:
    """The dir the command started in, also under hydra.job.chdir=true (which moves the task into its run dir)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    return get_original_cwd() if HydraConfig.initialized() else os.getcwd()


def _safe(text: str) -> str:
    """Letters, digits and `.-_` only: a path with `=` or `,` could not be given back as ckpt_path=PATH."""
    return re.sub(r"[^\w.-]+", "-", text)


def _short_keys(keys: list[str]) -> dict[str, str]:
    """Each dotted key by its last part (`optimizer.lr` -> `lr`), or whole where two keys share that part."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {key: part if last.count(part) == 1 else key for key, part in zip(keys, last)}


def name_items(overrides: list[str], groups, excluded=(), only=None) -> list[str]:
    """What the overrides changed, in order: a group's choice (`manual`), a key's last part and value (`lr1e-06`)."""
    pairs = [key_and_value(o) for o in overrides if not o.startswith("~")]
    pairs = [(k, v) for k, v in pairs
             if k not in excluded and not k.startswith("hydra.") and (only is None or k in only)]
    short = _short_keys([k for k, _ in pairs])
    items = []
    for key, value in pairs:
        with contextlib.suppress(ValueError):
            value = f"{float(value):.4g}" if len(value) > 8 and not float(value).is_integer() else value
        if _safe(value) != value:  # `[1,2]` -> `1-2`, `/tmp/a b` -> `tmp-a-b`
            value = _safe(value).strip("-") or "-"
        joint = "" if value[:1] in "0123456789-+." else "-"  # `lr1e-06`, `accelerator-cpu`
        items.append(value if key in groups else f"{_safe(short[key])}{joint}{value}")
    return items


def joined(items: list[str], n: int) -> str:
    """The items joined by `_`, as many whole ones as fit in n characters: a name is never cut mid-value."""
    ends = itertools.accumulate(len(item) + 1 for item in items)  # where each item's `_` would go
    return "_".join(item for item, end in zip(items, ends) if end <= n + 1)


def _changed(hydra: DictConfig, only=None) -> list[str]:
    excluded = set(hydra.job.config.override_dirname.exclude_keys)
    return name_items(list(hydra.overrides.task), set(hydra.runtime.choices), excluded, only)


def _run_name(time: str, pid: int, *, _root_: DictConfig) -> str:
    """`manual_lr1e-06_1206-0741_9014`: what changed, when, by which process; a resume's: `<first run>_resumed_...`."""
    ckpt, continued = Path(str(_root_.get("ckpt_path"))), None
    if _root_.get("ckpt_path"):  # `<run>/checkpoints/x.ckpt` continues <run>, any other file its own name
        continued = (ckpt.parent.parent.name if ckpt.parent.name == "checkpoints" else ckpt.stem).split("_resumed_")[0]
        continued = _safe(continued)[:150]  # the whole name stays below the 255-byte limit
    changed = joined(_changed(_root_.hydra), 120 if continued is None else max(0, 200 - len(continued)))
    unique = "_".join(part for part in (changed, f"{time}_{pid}") if part)
    return unique if continued is None else f"{continued}_resumed_{unique}"


def _swept_keys(overrides, params) -> list[str]:
    """The keys a sweep varies; cached, so that its jobs (one value each) get the sweep's answer from Hydra's copy."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides([str(o) for o in overrides])
    keys = [key_and_value(o.get_key_element())[0] for o in parsed if o.is_sweep_override()]
    return keys + [str(k) for k in (params or {}) if str(k) not in keys]


SWEPT = "${swept_keys:${hydra.overrides.task},${oc.select:hydra.sweeper.params,null}}"  # as conf/train.yaml types it


def remember_swept_keys(sweep_config: DictConfig) -> None:
    """Fills the swept keys' cache from the sweep's config: where hydra.sweep.dir is given, nothing else would."""
    if SWEPT in str(OmegaConf.to_container(sweep_config.hydra.sweep, resolve=False).get("subdir")):
        OmegaConf.create({"swept": SWEPT}, parent=sweep_config).swept  # noqa: B018 - resolved for its cache


def _sweep_suffix(keys) -> str:
    """`_lr_hidden_dim`: a sweep dir's name ends with what its jobs vary."""
    text = joined([_safe(k) for k in _short_keys(list(keys)).values()], 60)
    return f"_{text}" if text else ""


def _job_name(num: int, swept, *, _root_: DictConfig) -> str:
    """`3_custom_relu_lr0.001`: a job's number and the values its sweep varies (no sweep known: every override)."""
    return "_".join(part for part in (str(num), joined(_changed(_root_.hydra, set(swept) or None), 200)) if part)


def _sweep_dir_or(default):
    """The sweep's dir (hydra.sweep.dir, as typed) in a job of a sweep or search, else `default`."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return str(HydraConfig.get().sweep.dir)
    return default


# ${pid:} makes run dir names unique; cached like Hydra's ${now:}, so that a job process that re-resolves the
# sweep dir (submitit, joblib) gets the launching process's dir, not its own
OmegaConf.register_new_resolver("pid", os.getpid, replace=True, use_cache=True)
OmegaConf.register_new_resolver("run_name", _run_name, replace=True)  # docs/configuration.md#output-paths
OmegaConf.register_new_resolver("swept_keys", _swept_keys, replace=True, use_cache=True)
OmegaConf.register_new_resolver("sweep_suffix", _sweep_suffix, replace=True)
OmegaConf.register_new_resolver("job_name", _job_name, replace=True)
# ${positive_or:X,D}: X if it is a positive number, else D (trainer.max_steps=-1 means "no limit")
OmegaConf.register_new_resolver("positive_or", lambda value, default: value if value > 0 else default, replace=True)
# ${sweep_dir_or:DEFAULT}: what a tracker groups a sweep's jobs by (conf/logger/mlflow.yaml, wandb.yaml)
OmegaConf.register_new_resolver("sweep_dir_or", _sweep_dir_or, replace=True)
# ${name_of:PATH}: the last part of a path (a tracker names a run by its dir)
OmegaConf.register_new_resolver("name_of", lambda path: Path(str(path)).name, replace=True)
# ${if_local_store:URI,PATH}: PATH where URI is a local MLflow store (a file), else null, for a server to choose
OmegaConf.register_new_resolver(
    "if_local_store", lambda uri, path: path if str(uri).startswith(("sqlite:", "file:", "/", ".")) else None,
    replace=True)


def planned_steps_args(scheduler: DictConfig | None) -> list[str]:
    """A scheduler's arguments left ??? (scheduler=cosine's T_max): Hydra leaves them out of the partial it builds,
    and the system passes each the run's planned optimizer steps, as Lightning counts them (run/system.py)."""
    return [key for key in scheduler or {} if OmegaConf.is_missing(scheduler, key)]
