"""An Optuna study in a database, joined by every search that names it (hparams_search=optuna).

The Optuna sweeper creates or loads the study itself (`load_if_exists`); this Hydra callback runs
just before it, at the start of the multirun, and does the two things the sweeper does not:

- creates the study, and with it the database schema, under a file lock: Optuna 2.10 loses a
  worker to a race when several processes create the schema of a new SQLite file at once;
- gives each search that joins the study the next sampler seed (seed, seed+1, ...), counted in
  the study itself: with one seed, a re-run or a second worker would draw the same parameters
  again as long as TPE samples at random (its first 10 trials).

docs/sweeps.md says how to run, continue and share a study.
"""

import logging
import warnings
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)
SWEEPS_KEY = "primer_sweeps"  # the study's user attribute: how many searches have joined it


class JoinStudy(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        sweeper = config.hydra.sweeper
        if sweeper.get("storage") is None:
            return  # in memory: the study lives as long as this sweep
        logging.getLogger("alembic").setLevel(logging.WARNING)  # not a line per plugin at each schema check
        # SQLAlchemy 1.4 warns that Optuna 2.10 is not ready for SQLAlchemy 2: the reason for the pin
        warnings.filterwarnings("ignore", "Deprecated API features detected")
        with _lock(sweeper.storage):
            joined = join(sweeper.storage, sweeper.study_name, _directions(sweeper.direction))
        seed = sweeper.sampler.get("seed")
        if seed is not None:
            with open_dict(config):  # read by the sweeper, which Hydra instantiates right after this
                sweeper.sampler.seed = seed + joined
        log.info(f"Optuna study '{sweeper.study_name}' in {sweeper.storage}: search {joined + 1} on it, "
                 f"sampler seed {sweeper.sampler.get('seed')}")


def join(storage: str, study_name: str, directions: list[str]) -> int:
    """Creates the study if it is new; returns how many searches joined it before this one."""
    import optuna

    study = optuna.create_study(storage=storage, study_name=study_name, directions=directions, load_if_exists=True)
    joined = study.user_attrs.get(SWEEPS_KEY, 0)
    study.set_user_attr(SWEEPS_KEY, joined + 1)
    return joined


def _directions(direction) -> list[str]:
    """`minimize`, or one direction per objective, as the sweeper takes them."""
    directions = list(direction) if OmegaConf.is_list(direction) or isinstance(direction, list) else [direction]
    return [getattr(d, "name", str(d)) for d in directions]


def _lock(storage: str):
    """A lock next to a SQLite file (whose folder is made here). A database server is not a file to lock:
    there, create the study once before starting workers together (docs/sweeps.md)."""
    from contextlib import nullcontext

    from filelock import FileLock
    from sqlalchemy.engine import make_url

    url = make_url(storage)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return nullcontext()
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    return FileLock(f"{url.database}.lock")
