"""Optuna studies in a storage shared by searches (hparams_search=optuna), and what names a study.

A storage is a SQLAlchemy URL (`sqlite:///outputs/optuna.db`, the default; `postgresql+psycopg://...`),
or `journal:///PATH` for Optuna's JournalStorage in a file (relative PATH; `journal:////abs/path`),
for clusters with a shared file system and no database server. Searches started together may all
create the same new study: on a SQLite or journal file a file lock serializes them; on a database
server Optuna's `load_if_exists` covers the study, and a retry the schema's first creation.

Each search that joins a study gets the next sampler seed (seed, seed+1, ...), counted in the study
itself: with one seed, a re-run or a second worker would draw the same parameters again as long as
the sampler draws at random (TPE's first 10 trials). docs/sweeps.md says how to run, continue and
share a study.
"""

import hashlib
import logging
import time
from contextlib import nullcontext
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)
SWEEPS_KEY = "primer_sweeps"  # the study's user attribute: how many searches have joined it
# hydra.job.env_set keys: the study and the number of the trial a job runs
STUDY_ENV, TRIAL_ENV = "PRIMER_OPTUNA_STUDY", "PRIMER_OPTUNA_TRIAL"
PRUNED_AT = "pruned_at_step"  # a trial's user attribute, set by the job that pruned itself
JOURNAL = "journal:///"


def open_storage(url: str | None):
    """The Optuna storage a URL names; None keeps the study in memory."""
    import optuna

    if url is None:
        return None
    if url.startswith(JOURNAL):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url[len(JOURNAL):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    return optuna.storages.RDBStorage(url)


def join(url: str | None, study_name: str | None, directions: list[str], make_sampler, pruner, seed: int | None):
    """Creates or loads the study with the sampler for this search.

    Returns (study, the sampler's seed, how many searches joined the study before this one)."""
    import optuna

    logging.getLogger("alembic").setLevel(logging.WARNING)  # not a line per plugin at each schema check
    with _lock(url):
        storage = _retry(lambda: open_storage(url), url)
        study = _retry(lambda: optuna.create_study(storage=storage, study_name=study_name, directions=directions,
                                                   sampler=None, pruner=pruner, load_if_exists=True), url)
        joined = study.user_attrs.get(SWEEPS_KEY, 0) if url is not None else 0
        if url is not None:
            study.set_user_attr(SWEEPS_KEY, joined + 1)
    seed = None if seed is None else seed + joined
    study.sampler = make_sampler(seed)
    return study, seed, joined


def load_trial(url: str, study_name: str, number: int, pruner):
    """Trial `number` of a stored study, as its job reports to it (primer.sweeps.pruning)."""
    import optuna

    storage = open_storage(url)
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner)
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study_name), number)
    return optuna.trial.Trial(study, trial_id)


def _retry(create, url, attempts: int = 5):
    """Searches started together against a new database server race to create Optuna's tables and
    version row; the losers get an IntegrityError (or ProgrammingError) and find them made on a retry."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(attempts):
        try:
            return create()
        except (IntegrityError, ProgrammingError) as error:
            if attempt == attempts - 1:
                raise
            log.info(f"{url}: {type(error).__name__} while another search creates the study; trying again")
            time.sleep(0.2 * (attempt + 1))


def _lock(url: str | None):
    """A lock next to a SQLite or journal file (whose folder is made here); on a server, see _advisory."""
    from filelock import FileLock
    from sqlalchemy.engine import make_url

    if url is None:
        return nullcontext()
    if url.startswith(JOURNAL):
        path = Path(url[len(JOURNAL):])
    else:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return _advisory(url) if parsed.get_backend_name() == "postgresql" else nullcontext()
        if parsed.database in (None, "", ":memory:"):
            return nullcontext()
        path = Path(parsed.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(f"{path}.join.lock")  # not `.lock`: JournalFileBackend's own lock is a symlink of that name


class _advisory:
    """A PostgreSQL session lock around joining a study: two searches started together count
    themselves (and so pick their seeds) one after the other."""

    KEY = int.from_bytes(hashlib.sha256(b"primer.sweeps.studies.join").digest()[:4], "big")

    def __init__(self, url: str):
        import sqlalchemy

        self.engine = sqlalchemy.create_engine(url)

    def __enter__(self):
        import sqlalchemy

        self.connection = self.engine.connect()
        self.connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": self.KEY})

    def __exit__(self, *exc):
        import sqlalchemy

        self.connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": self.KEY})
        self.connection.close()
        self.engine.dispose()


# Overrides that change what a run shows or where it writes, never its result: left out of a study's
# identity, so that e.g. `logger=csv` or `trainer.enable_progress_bar=false` continues the same study.
COSMETIC = ("hydra", "hparams_search", "paths", "logger", "callbacks", "trainer.enable_progress_bar",
            "trainer.enable_model_summary", "trainer.log_every_n_steps", "trainer.enable_checkpointing",
            "trainer.default_root_dir")


def study_name(_root_: DictConfig) -> str:
    """`${study_name:}`: `primer:` + the command's overrides that change results + a digest of the
    search space (hydra.sweeper.params and sweeps on the command line) and the directions.

    E.g. `primer:data.input_dim=8 space:3f2a9c1d`. Resolved once, by the search's own process.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = _root_.hydra.sweeper
    space = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    fixed = []
    for override in OverridesParser.create().parse_overrides(list(_root_.hydra.overrides.task)):
        key = override.get_key_element().lstrip("~+")
        if override.is_sweep_override():
            space.append(f"{key}={override.input_line.split('=', 1)[1]}")
        elif not any(key == c or key.startswith(c + ".") for c in COSMETIC):
            fixed.append(override.input_line)
    direction = sweeper.get("direction")
    directions = [str(d) for d in direction] if OmegaConf.is_list(direction) else [str(direction)]
    digest = hashlib.sha256(repr((sorted(space), directions)).encode()).hexdigest()[:8]
    settings = ",".join(sorted(fixed))
    return f"primer:{settings} space:{digest}" if settings else f"primer:space:{digest}"


# ${study_name:}: an Optuna search's study, named after what changes its results (conf/hparams_search/optuna.yaml)
OmegaConf.register_new_resolver("study_name", study_name, replace=True)
