"""Optuna studies in a storage that searches share: a SQLAlchemy URL, or `journal:///PATH` (Optuna's
JournalStorage in a file). Each search that joins a study takes the next sampler seed (seed, seed+1,
...), counted in the study under a lock; a failing storage ends the search in one line naming it."""

import contextlib
import logging
import threading
import warnings
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from primer.exits import BadConfig, EnvironmentFault, causes, first_line

log = logging.getLogger(__name__)
SWEEPS_KEY = "primer_sweeps"  # the study's user attribute: how many searches have joined it
STUDY_ENV, TRIAL_ENV = "PRIMER_OPTUNA_STUDY", "PRIMER_OPTUNA_TRIAL"  # hydra.job.env_set: a job's study and trial
PRUNED_AT = "pruned_at_step"  # a trial's user attribute, set by the job that pruned itself
JOURNAL = "journal:///"


def shown(url: str) -> str:
    """The storage's URL without its password."""
    from sqlalchemy.engine import make_url

    return url if url.startswith(JOURNAL) else make_url(url).render_as_string(hide_password=True)


@contextlib.contextmanager
def reaching(url: str | None):
    """Turns the storage failing (a server gone, a read-only SQLite dir) into one line naming it."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    try:
        yield
    except Exception as error:
        failure = next((e for e in causes(error) if isinstance(e, (OperationalError, InterfaceError))), None)
        if failure is None:  # not SQLAlchemy's error, which Optuna may wrap (StorageInternalError)
            raise
        reason = first_line(failure.orig if failure.orig is not None else failure)
        raise EnvironmentFault(f"the study's storage failed: {shown(url)}: {reason}") from error


def open_storage(url: str | None, heartbeat_s: int | None = None):
    """The Optuna storage a URL names (None: in memory); in a database a running trial beats every `heartbeat_s`."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if url is None or not url.startswith(JOURNAL):
        return url and optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat_s)
    path = Path(url[len(JOURNAL):])
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError: a line that is no journal entry
        raise BadConfig(f"hydra.sweeper.storage={url}: {path} is not an Optuna journal ({type(error).__name__}: "
                        f"{first_line(error)}); give another file, or mend or move this one") from None


def join(url: str | None, study_name: str | None, directions: list[str], make_sampler, pruner, seed: int | None,
         heartbeat_s: int | None = None):
    """(study, storage, this search's sampler seed, searches that joined before); fails crashed searches' trials."""
    import optuna
    from optuna.trial import TrialState
    from sqlalchemy.engine import make_url

    memory = url is not None and not url.startswith(JOURNAL) and make_url(url).database in (None, "", ":memory:")
    if memory and make_url(url).get_backend_name() == "sqlite":
        raise BadConfig(f"hydra.sweeper.storage={url}: a study in memory is lost with this process and its trials' "
                        "jobs cannot reach it; store it in a file (sqlite:///outputs/optuna.db, journal:///PATH) or "
                        "on a server, or set hydra.sweeper.storage=null to keep it in the search's own memory")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # not a line per plugin at each schema check
    with reaching(url), _lock(url), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats are "experimental"
        storage = open_storage(url, heartbeat_s)  # under the lock: one search at a time creates Optuna's tables
        study = optuna.create_study(storage=storage, study_name=study_name, directions=directions, pruner=pruner,
                                    load_if_exists=True)
        joined = study.user_attrs.get(SWEEPS_KEY, 0)  # 0 in memory: a new study each search
        study.set_user_attr(SWEEPS_KEY, joined + 1)
        running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        optuna.storages.fail_stale_trials(study)  # the trials whose heartbeat stopped: their search crashed
        if failed := [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.number in
                      running]:
            log.warning(f"trials {', '.join(map(str, failed))} of study '{study.study_name}' were left running by a "
                        "search that stopped; marked failed")
    study.sampler = make_sampler(seed := None if seed is None else seed + joined)
    return study, storage, seed, joined


@contextlib.contextmanager
def heartbeats(storage, study, trials, every_s: int | None):
    """While the trials' jobs run, each beats every `every_s` seconds in a database storage."""
    import optuna

    if every_s is None or not isinstance(storage, optuna.storages.RDBStorage):
        yield
        return
    study_id = storage.get_study_id_from_name(study.study_name)
    ids = [storage.get_trial_id_from_study_id_trial_number(study_id, t.number) for t in trials]
    stop = threading.Event()

    def beat():
        with contextlib.suppress(Exception):  # the server went away: the sweeper's next call says so
            while not stop.is_set():
                for trial_id in ids:
                    storage.record_heartbeat(trial_id)
                stop.wait(every_s)

    thread = threading.Thread(target=beat, daemon=True, name="trial heartbeats")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def _lock(url: str | None):
    """A lock around joining a study: a file lock beside a SQLite or journal file, a PostgreSQL session lock."""
    import sqlalchemy
    from filelock import FileLock

    backend = None if url is None or url.startswith(JOURNAL) else sqlalchemy.make_url(url)
    if backend is not None and backend.get_backend_name() == "postgresql":
        # released as the connection closes; the key: any number all primer searches share
        with sqlalchemy.create_engine(url, poolclass=sqlalchemy.NullPool).connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(20260432)"))
            yield
    elif url is not None and (backend is None or backend.get_backend_name() == "sqlite"):
        path = Path(url[len(JOURNAL):] if backend is None else backend.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{path}.join.lock"):  # not `.lock`: JournalFileBackend's own lock is a symlink of that name
            yield
    else:
        yield


# Overrides that change what a run shows or where it writes, never its result: left out of a study's name,
# so that e.g. `logger=csv` continues the same study.
COSMETIC = ("hydra", "hparams_search", "paths", "logger", "callbacks", "trainer.enable_progress_bar",
            "trainer.enable_model_summary", "trainer.log_every_n_steps", "trainer.enable_checkpointing",
            "trainer.default_root_dir")


def study_name(_root_: DictConfig) -> str:
    """`${study_name:}`: `primer:` + the overrides that change results + a digest of the search space and directions."""
    import hashlib

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
    directions = [str(d) for d in sweeper.direction] if OmegaConf.is_list(sweeper.direction) else [sweeper.direction]
    digest = hashlib.sha256(repr((sorted(space), directions)).encode()).hexdigest()[:8]
    return f"primer:{','.join(sorted(fixed))} space:{digest}" if fixed else f"primer:space:{digest}"


OmegaConf.register_new_resolver("study_name", study_name, replace=True)
