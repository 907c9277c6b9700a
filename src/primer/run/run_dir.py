"""A run dir's life, in one place: claimed before anything is written into it, kept once training has
stepped, and otherwise given back as it was found.

- `claim`, before Hydra (or the Python API) writes into the dir: a symbolic link inside it is refused
  (primer never writes through one), a second run into the same dir is refused (a lock, held while this
  run lives), and an earlier run's files are moved aside into `.earlier-run/`, so that this run's
  files never mix with it.
- `training_started`, called by primer.run.guards.TrainingStarted (first among primer's own callbacks)
  once the first training step is done: the run is worth keeping, and what was moved aside is deleted.
- `give_back`, on any ending before that (bad input found late, Ctrl-C, SIGTERM, a set-up error): a dir
  this run made is removed whole; a used dir gets its earlier files back and loses only what this run
  added. A resume into its own dir keeps its TensorBoard events and train.log in place, so the curve
  and the log go on; the log is cut back to its earlier length on a give-back.

Rank 0 alone claims: the other processes of a DDP run write into the dir rank 0 holds. Nothing here
imports Lightning: the claim comes before Hydra sets up logging, which Lightning's import would change.
"""

import contextlib
import logging
import os
import shutil
from pathlib import Path

from primer.exits import BadConfig
from primer.run.files import EVENT_FILES, RUN_RECORDS

ASIDE = ".earlier-run"  # an earlier run's files while this run has not stepped yet

log = logging.getLogger(__name__)


class _Claim:
    def __init__(self, path: Path, lock: int | None, made: Path | None, resumes_here: bool):
        self.path, self.lock, self.made = path, lock, made  # made: the top dir this run created, if any
        self.resumes_here = resumes_here
        self.moved: list[str] = []  # names moved into ASIDE
        self.events_moved = 0
        self.grows: dict[str, int] = {}  # a file this run appends to (a resume's train.log): its earlier length
        self.found: set[str] = set()  # what the dir held (after the move), relative paths


_claim: _Claim | None = None
_started = False
_last_path: Path | None = None
_sweep: tuple[Path, str] | None = None  # a sweep dir to lock once it exists, and the setting that chose it
_sweep_lock: int | None = None  # held until the sweep's process ends


def claim(path: str | Path, where: str, resumes_here: bool = False, hydra_files: tuple[str, ...] = ()) -> None:
    """Makes `path` this run's, or raises BadConfig (`where` says which setting chose it) where it holds a
    link or another run is writing into it. `resumes_here`: the run resumes from a checkpoint in this dir.
    `hydra_files`: what Hydra is about to write there (`.hydra`, `train.log`) when it has not yet."""
    global _claim, _started, _last_path
    path = _last_path = Path(path).absolute()
    if _claim is not None and _claim.path == path:
        return  # claimed before Hydra wrote into it; the task goes on with that claim
    release()
    _started = False
    if not _rank_zero():
        return
    _lock_the_sweep()
    refuse_links(path, where)
    made = next((d for d in reversed([path, *path.parents]) if not d.exists()), None)
    path.mkdir(parents=True, exist_ok=True)
    taken = _Claim(path, lock(path, where, made), made, resumes_here)
    if made is None:
        _move_earlier_run_aside(taken, resumes_here, hydra_files)
    _claim = taken


def _rank_zero() -> bool:
    """The environment Lightning reads a process's rank from (its DDP processes are started with it set)."""
    return all(os.environ.get(key, "0") == "0" for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"))


def claim_sweep(path: str | Path, where: str) -> None:
    """A sweep dir: no link inside it, and one sweep at a time. A sweep dir that is not there yet is locked
    once Hydra has made it, as its first job in this process is claimed (a sweep refused before its first
    job, by Hydra or a sweeper, leaves no dir behind). Each job's own dir is claimed as the job starts."""
    global _sweep, _sweep_lock
    path = Path(path).absolute()
    refuse_links(path, where)
    if _sweep_lock is not None:  # an earlier sweep of this process (tests, notebooks) lets its dir go
        os.close(_sweep_lock)
    _sweep, _sweep_lock = (path, where), None
    _lock_the_sweep()


def _lock_the_sweep() -> None:
    global _sweep, _sweep_lock
    if _sweep is not None and _sweep[0].is_dir():
        _sweep_lock, _sweep = lock(*_sweep), None


def refuse_links(path: Path, where: str) -> None:
    """A link inside a dir primer writes into would have its writes land where it points: refused, not followed."""
    path = Path(path).absolute()
    if not path.is_dir():
        return
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            if os.path.islink(found := os.path.join(root, name)):
                raise BadConfig(f"{where}: {found} is a symbolic link; primer never writes through a link in a run "
                                "or sweep dir: remove it, or choose another dir")


def lock(path: Path, where: str, made: Path | None = None) -> int | None:
    """An exclusive lock on the dir, held until this process releases it or ends; BadConfig if another holds it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        raise BadConfig(f"{where}: another run or sweep is writing into {path} now; wait for it to end, or choose "
                        "another dir") from None
    return fd


def _move_earlier_run_aside(taken: _Claim, resumes_here: bool, hydra_files: tuple[str, ...]) -> None:
    path, aside = taken.path, taken.path / ASIDE
    if aside.exists():
        _restore(taken.path)  # a run killed in set-up: its earlier run comes back first
    events = [] if resumes_here else sorted(p.name for p in path.glob(EVENT_FILES))
    appended = {"train.log"} if resumes_here else set()
    names = [n for n in (*RUN_RECORDS, *hydra_files) if n not in appended and os.path.lexists(path / n)] + events
    taken.grows = {n: (path / n).stat().st_size for n in appended & set(hydra_files) if (path / n).is_file()}
    if names:
        aside.mkdir()
        for name in names:
            os.replace(path / name, aside / name)
    taken.moved, taken.events_moved = names, len(events)
    taken.found = set(_entries(path))


def last_claimed() -> Path | None:
    """The run dir this process claimed last, given back or not: where an error that names no file was writing."""
    return _last_path


def has_started() -> bool:
    """Whether this run's first training step is done: from then on its dir is kept, whatever happens."""
    return _started


def training_started() -> None:
    """The run has stepped: the earlier run moved aside is deleted for good."""
    global _started
    if _started:
        return
    _started = True
    if _claim is None or not _claim.moved:
        return
    shutil.rmtree(_claim.path / ASIDE)
    results = [n for n in _claim.moved if n in RUN_RECORDS]
    if _claim.events_moved:
        results.append(f"{_claim.events_moved} TensorBoard event file{'s' if _claim.events_moved > 1 else ''}")
    if results and not _claim.resumes_here:  # a resume replaces only its records: nothing to say
        from primer.run.console import short_path

        listed = ", ".join(results[:-1]) + " and " + results[-1] if len(results) > 1 else results[0]
        log.info(f"{short_path(_claim.path)} held an earlier run; this run replaces it: removed its {listed} "
                 "(its checkpoints stay until this run saves its own)")


def give_back() -> None:
    """Ends a claim whose run never stepped: the dir is left as it was found. Does nothing once training started."""
    if _claim is None or _started:
        return release()
    if _claim.made is not None:
        shutil.rmtree(_claim.made, ignore_errors=True)
    else:
        path = _claim.path
        for name in sorted(set(_entries(path)) - _claim.found, key=len, reverse=True):  # a dir's files before it
            added = path / name
            added.rmdir() if added.is_dir() and not added.is_symlink() else added.unlink()
        for name, size in _claim.grows.items():
            os.truncate(path / name, size)
        _restore(path)
    release()


@contextlib.contextmanager
def given_back_unless_started():
    """Gives the claimed dir back where what runs inside ends (an error, Ctrl-C) before training's first step;
    lets it go at the end either way."""
    try:
        yield
    except BaseException:
        give_back()
        raise
    finally:
        release()


def _entries(path: Path):
    """Every file and dir under `path`, as paths relative to it, without following links or entering ASIDE."""
    for root, dirs, files in os.walk(path):
        if root == str(path):
            dirs[:] = [d for d in dirs if d != ASIDE]
        for name in dirs + files:
            yield os.path.relpath(os.path.join(root, name), path)


def _restore(path: Path) -> None:
    aside = path / ASIDE
    for moved in aside.iterdir():
        target = path / moved.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(moved, target)
    aside.rmdir()


def release() -> None:
    """Lets another run into the dir: the run is over (or the next run in this process claims its own)."""
    global _claim
    if _claim is not None and _claim.lock is not None:
        os.close(_claim.lock)
    _claim = None

