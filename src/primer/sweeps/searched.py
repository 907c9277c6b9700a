"""A line about an Optuna trial shows the values it drew, rounded; summary.csv keeps every override."""

from pathlib import Path

from omegaconf import OmegaConf

SEARCHED_ENV = "PRIMER_OPTUNA_SEARCHED"  # hydra.job.env_set key: the keys the search draws, comma-separated


def shown_overrides(job_dir: Path, overrides: list[str]) -> list[str]:
    """A trial's drawn overrides, rounded (the keys its .hydra/hydra.yaml names, read as data); others as they are."""
    path = Path(job_dir, ".hydra", "hydra.yaml")
    env = OmegaConf.select(OmegaConf.load(path), "hydra.job.env_set", default=None) if path.is_file() else None
    keys = OmegaConf.to_container(env, resolve=False).get(SEARCHED_ENV) if env is not None else None
    return [rounded(o) for o in overrides if o.partition("=")[0] in str(keys).split(",")] if keys else overrides


def rounded(override: str) -> str:
    """`optimizer.lr=0.0006431172050131992` -> `optimizer.lr=0.0006431`; integers and names as they are."""
    key, _, text = override.partition("=")
    try:
        return override if text.lstrip("-").isdigit() else f"{key}={float(text):.4g}"
    except ValueError:
        return override
