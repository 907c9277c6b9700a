"""Where the config lives, and the resolvers it uses. Imported by every entry point before Hydra starts."""

import os
import re
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


def _name_suffix(overrides: str, n: int) -> str:
    """`_model-manual_optimizer.lr-1e-06` for `model=manual,optimizer.lr=1e-06`, cut to n characters, or "".
    Letters, digits and `.-_` only: a path with `=` or `,` in it could not be given back as ckpt_path=PATH."""
    text = re.sub(r"[^\w.-]+", "-", str(overrides).replace(",", "_"))[:n]
    return f"_{text}" if text else ""


# ${suffix:OVERRIDES,N}: a run dir's name ends with what its command line changed (conf/train.yaml)
OmegaConf.register_new_resolver("suffix", _name_suffix, replace=True)

# ${positive_or:X,D}: X if it is a positive number, else D (trainer.max_steps=-1 means "no limit")
OmegaConf.register_new_resolver("positive_or", lambda value, default: value if value > 0 else default, replace=True)


def key_and_value(override: str) -> tuple[str, str]:
    """("trainer.max_steps", "5") of `trainer.max_steps=5`, `+trainer.max_steps=5` or `++...`; ("key", "") of `~key`."""
    key, _, text = override.lstrip("+~").partition("=")
    return key, text


def hydra_quoted(text: str, quote: str = '"') -> str:
    """TEXT as a quoted value of a Hydra override (`ckpt_path="a=1,b=2/final.ckpt"`), read back as TEXT:
    a `,` or `=` unquoted would make it a sweep or a bad override. Backslashes before a quote (or the
    closing one) are doubled, the quote and `${` escaped (Hydra's grammar for quoted values)."""
    escaped = re.sub(rf"(\\*)({quote}|$)", lambda m: m[1] * 2 + ("\\" + m[2] if m[2] else ""), text)
    return quote + escaped.replace("${", "\\${") + quote


def override(key: str, text: str) -> str:
    """`key=TEXT`, TEXT quoted for Hydra where it holds more than letters, digits and `_-+./:@%~`."""
    return f"{key}={text}" if re.fullmatch(r"[\w\-+./:@%~]+", text) else f"{key}={hydra_quoted(text)}"


def task_config(cfg: DictConfig) -> DictConfig:
    """The task's own config: cfg without Hydra's node (a config composed with return_hydra_config=True holds it)."""
    return OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])


def launch_dir() -> str:
    """The dir the command was started in, from which the paths it was given are read, also under
    hydra.job.chdir=true, which moves the task into its run dir (Hydra's runtime.cwd)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    return get_original_cwd() if HydraConfig.initialized() else os.getcwd()


def _run_steps(max_steps: int, max_epochs: int | None, steps_per_epoch: int) -> int:
    """trainer.max_steps, or with no limit (-1) max_epochs × steps per epoch; -1 if only max_time ends the run."""
    if max_steps > 0:
        return max_steps
    return max_epochs * steps_per_epoch if max_epochs is not None and max_epochs > 0 else -1


# ${run_steps:MAX_STEPS,MAX_EPOCHS,STEPS_PER_EPOCH}: how many training steps a run takes (a scheduler's length)
OmegaConf.register_new_resolver("run_steps", _run_steps, replace=True)
