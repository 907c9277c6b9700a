"""What a line about an Optuna trial shows: the values the search drew, rounded, and not the overrides
every trial of the search shares (those are said once, when the search starts).

The sweeper names the searched keys in each job's Hydra config (hydra.job.env_set, SEARCHED_ENV), so the
console line of a job as it ends and summary.md's row, rebuilt later from the job dir, show the same.
summary.csv keeps every override, with every digit.
"""

from pathlib import Path

from omegaconf import OmegaConf

SEARCHED_ENV = "PRIMER_OPTUNA_SEARCHED"  # hydra.job.env_set key: the keys the search draws, comma-separated
DIGITS = 4  # significant digits of a drawn number in a line (the trial keeps every digit)


def searched_keys(job_dir: Path) -> list[str] | None:
    """The keys the search drew for this job, from its .hydra/hydra.yaml (read as data, resolving nothing);
    None for a job of any other sweep."""
    path = Path(job_dir, ".hydra", "hydra.yaml")
    if not path.is_file():
        return None
    env = OmegaConf.select(OmegaConf.load(path), "hydra.job.env_set", default=None)
    keys = OmegaConf.to_container(env, resolve=False).get(SEARCHED_ENV) if env is not None else None
    return str(keys).split(",") if keys else None


def shown_overrides(job_dir: Path, overrides: list[str]) -> list[str]:
    """A trial's searched overrides, numbers to DIGITS significant digits; every override for other jobs."""
    keys = searched_keys(job_dir)
    if keys is None:
        return overrides
    return [rounded(o) for o in overrides if o.partition("=")[0] in keys]


def rounded(override: str) -> str:
    """`optimizer.lr=0.0006431172050131992` -> `optimizer.lr=0.0006431`; integers and names as they are."""
    key, _, text = override.partition("=")
    try:
        int(text)
        return override
    except ValueError:
        pass
    try:
        return f"{key}={float(text):.{DIGITS}g}"
    except ValueError:
        return override
