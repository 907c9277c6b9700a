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

A storage that fails (a database server gone, a read-only SQLite dir) ends the search in one line
naming it (primer.exits.EnvironmentFault, exit 5). In a database storage each running trial beats a
heartbeat: a trial left RUNNING by a search that crashed is marked failed by the next search that
joins the study (Optuna's fail_stale_trials). JournalStorage has no heartbeat.
"""

import contextlib
import hashlib
import logging
import threading
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from primer.exits import BadConfig, EnvironmentFault, first_line

log = logging.getLogger(__name__)
SWEEPS_KEY = "primer_sweeps"  # the study's user attribute: how many searches have joined it
# hydra.job.env_set keys: the study and the number of the trial a job runs
STUDY_ENV, TRIAL_ENV = "PRIMER_OPTUNA_STUDY", "PRIMER_OPTUNA_TRIAL"
PRUNED_AT = "pruned_at_step"  # a trial's user attribute, set by the job that pruned itself
JOURNAL = "journal:///"


def check_storage(url: str | None) -> None:
    """Refuses a storage the trials' jobs cannot reach: a SQLite database in memory is one process's own."""
    from sqlalchemy.engine import make_url

    if url is None or url.startswith(JOURNAL):
        return
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise BadConfig(f"hydra.sweeper.storage={url}: a study in memory is lost with this process and its trials' "
                        "jobs cannot reach it; store it in a file (sqlite:///outputs/optuna.db, journal:///PATH) or "
                        "on a server, or set hydra.sweeper.storage=null to keep it in the search's own memory")


def shown(url: str) -> str:
    """The storage's URL without its password."""
    from sqlalchemy.engine import make_url

    return url if url.startswith(JOURNAL) else make_url(url).render_as_string(hide_password=True)


@contextlib.contextmanager
def reaching(url: str | None):
    """Turns the storage failing (a server gone, a read-only SQLite dir) into one line naming it."""
    try:
        yield
    except Exception as error:
        if (failure := _storage_failure(error)) is None:
            raise
        reason = first_line(failure.orig) if failure.orig is not None else first_line(failure)
        raise EnvironmentFault(f"the study's storage failed: {shown(url)}: {reason}") from error


def _storage_failure(error: BaseException):
    """SQLAlchemy's OperationalError or InterfaceError behind `error` (Optuna wraps it in StorageInternalError)."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    while error is not None and not isinstance(error, (OperationalError, InterfaceError)):
        error = error.__cause__ or error.__context__
    return error


def open_storage(url: str | None, heartbeat_s: int | None = None):
    """The Optuna storage a URL names; None keeps the study in memory. `heartbeat_s`: how often a running
    trial beats in a database storage (RDBStorage's heartbeat_interval)."""
    import optuna

    if url is None:
        return None
    if url.startswith(JOURNAL):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url[len(JOURNAL):])
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        except ValueError as error:  # JSONDecodeError, UnicodeDecodeError: a line that is no journal entry
            raise BadConfig(f"hydra.sweeper.storage={url}: {path} is not an Optuna journal ({type(error).__name__}: "
                            f"{first_line(error)}); give another file, or mend or move this one") from None
    with warnings.catch_warnings(), reaching(url):
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat_interval is "experimental"
        return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat_s)


def join(url: str | None, study_name: str | None, directions: list[str], make_sampler, pruner, seed: int | None,
         heartbeat_s: int | None = None):
    """Creates or loads the study with the sampler for this search, and fails the trials a crashed search
    left running in it.

    Returns (study, its storage, the sampler's seed, how many searches joined the study before this one)."""
    import optuna

    logging.getLogger("alembic").setLevel(logging.WARNING)  # not a line per plugin at each schema check
    check_storage(url)
    with reaching(url), _lock(url):
        storage = _retry(lambda: open_storage(url, heartbeat_s), url)
        study = _retry(lambda: optuna.create_study(storage=storage, study_name=study_name, directions=directions,
                                                   sampler=None, pruner=pruner, load_if_exists=True), url)
        joined = study.user_attrs.get(SWEEPS_KEY, 0) if url is not None else 0
        if url is not None:
            study.set_user_attr(SWEEPS_KEY, joined + 1)
        fail_orphans(study)
    seed = None if seed is None else seed + joined
    study.sampler = make_sampler(seed)
    return study, storage, seed, joined


def fail_orphans(study) -> list[int]:
    """Marks the trials whose heartbeat stopped (their search crashed, or lost its server) failed; their numbers."""
    import optuna
    from optuna.trial import TrialState

    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    failed = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.number in running]
    if failed:
        log.warning(f"trials {', '.join(map(str, failed))} of study '{study.study_name}' were left running by a "
                    "search that stopped; marked failed")
    return failed


@contextlib.contextmanager
def heartbeats(storage, study, trials, every_s: int | None):
    """While the trials' jobs run, each trial beats every `every_s` seconds in a database storage (not in
    memory or a journal): a trial whose beats stop was orphaned (primer.sweeps.studies.fail_orphans)."""
    import optuna

    if every_s is None or not isinstance(storage, optuna.storages.RDBStorage):
        yield
        return
    study_id = storage.get_study_id_from_name(study.study_name)
    ids = [storage.get_trial_id_from_study_id_trial_number(study_id, t.number) for t in trials]
    stop = threading.Event()

    def beat():
        try:
            while True:
                for trial_id in ids:
                    storage.record_heartbeat(trial_id)
                if stop.wait(every_s):
                    return
        except Exception as error:  # noqa: BLE001 - the server went away: the sweeper's next call says so
            log.info(f"heartbeat stopped: {type(error).__name__}")

    thread = threading.Thread(target=beat, daemon=True, name="trial heartbeats")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def load_trial(url: str, study_name: str, number: int, pruner):
    """Trial `number` of a stored study, as its job reports to it (primer.sweeps.pruning)."""
    import optuna

    with reaching(url):
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
