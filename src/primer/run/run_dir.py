"""A run dir's life: claimed by rank 0 (locked, no links, an earlier run moved aside) before anything is written into
it, kept once training has stepped, else given back as found. No Lightning import: it would change Hydra's logging."""

import contextlib
import fcntl
import logging
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

from primer.exits import BadConfig
from primer.run.files import EVENT_FILES, RUN_RECORDS

ASIDE = ".earlier-run"  # an earlier run's files while this run has not stepped yet

log = logging.getLogger(__name__)
_claim = None  # the dir this process holds: path, lock, made (the top dir it created), moved, grows, found
_started = False
_last_path: Path | None = None
_sweep: tuple[Path, str] | None = None  # a sweep dir to lock once Hydra has made it, and the setting that chose it
_sweep_lock: int | None = None  # held until the process ends


def claim(path: str | Path, where: str, resumes_here: bool = False, hydra_files: tuple[str, ...] = ()) -> None:
    """Makes `path` this run's, or BadConfig naming `where` (the setting); `hydra_files`: what Hydra will write."""
    global _claim, _started, _last_path
    path = _last_path = Path(path).absolute()
    if _claim is not None and _claim.path == path:
        return  # claimed before Hydra wrote into it; the task goes on with that claim
    outer = _claim if _claim is not None and not _started else None  # hydra.run.dir, where paths.output_dir is another
    if outer is None:
        release()
    _started = False
    if any(os.environ.get(key, "0") != "0" for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")):
        return  # Lightning's other processes write into the dir rank 0 holds
    if _sweep is not None and _sweep[0] in path.parents:  # a sweep's job, not a run after a sweep that failed early
        _lock_the_sweep()
    refuse_links(path, where)
    made = next((d for d in reversed([path, *path.parents]) if not d.exists()), None)
    path.mkdir(parents=True, exist_ok=True)
    taken = SimpleNamespace(path=path, lock=lock(path, where, made), made=made, resumes_here=resumes_here, moved=[],
                            events_moved=0, grows={}, found=set(), outer=outer)
    if made is None:
        _move_earlier_run_aside(taken, hydra_files)
    _claim = taken


def claim_sweep(path: str | Path, where: str) -> None:
    """No link inside, one sweep at a time; locked once Hydra makes it, as its first job is claimed."""
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
    for root, dirs, files in os.walk(Path(path).absolute()):
        for name in dirs + files:
            if os.path.islink(found := os.path.join(root, name)):
                raise BadConfig(f"{where}: {found} is a symbolic link; primer never writes through a link in a run "
                                "or sweep dir: remove it, or choose another dir")


def lock(path: Path, where: str, made: Path | None = None) -> int:
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


def _move_earlier_run_aside(taken: SimpleNamespace, hydra_files: tuple[str, ...]) -> None:
    # a resume into its own dir keeps its events and appends to its train.log (cut back on a give-back)
    path, aside = taken.path, taken.path / ASIDE
    if aside.exists():
        _restore(path)  # a run killed in set-up: its earlier run comes back first
    events = [] if taken.resumes_here else sorted(p.name for p in path.glob(EVENT_FILES))
    appended = {"train.log"} if taken.resumes_here else set()
    taken.moved = [n for n in (*RUN_RECORDS, *hydra_files) if n not in appended and os.path.lexists(path / n)] + events
    taken.grows = {n: (path / n).stat().st_size for n in appended & set(hydra_files) if (path / n).is_file()}
    if taken.moved:
        aside.mkdir()
        for name in taken.moved:
            os.replace(path / name, aside / name)
    taken.events_moved, taken.found = len(events), set(_entries(path))


def last_claimed() -> Path | None:
    """Where an error that names no file was writing."""
    return _last_path


def has_started() -> bool:
    """Whether the first training step is done: from then on the dir is kept, whatever happens."""
    return _started


def training_started() -> None:
    """Deletes the earlier run moved aside, for good (also in hydra.run.dir, where paths.output_dir is another)."""
    global _started
    first, _started = not _started, True
    taken = _claim if first else None
    while taken is not None:
        if taken.moved:
            _delete_earlier_run(taken)
        taken = taken.outer


def _delete_earlier_run(taken: SimpleNamespace) -> None:
    shutil.rmtree(taken.path / ASIDE)
    removed = [n for n in taken.moved if n in RUN_RECORDS]
    if count := taken.events_moved:
        removed.append(f"{count} TensorBoard event file{'s' if count > 1 else ''}")
    if removed and not taken.resumes_here:  # a resume replaces only its records: nothing to say
        from primer.run.console import short_path

        listed = ", ".join(removed[:-1]) + " and " + removed[-1] if len(removed) > 1 else removed[0]
        log.info(f"{short_path(taken.path)} held an earlier run; this run replaces it: removed its {listed} "
                 "(its checkpoints stay until this run saves its own)")


def give_back() -> None:
    """Leaves a dir whose run never stepped as it was found (and the dir claimed before it), and releases them."""
    global _claim
    while _claim is not None and not _started:
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
        os.close(_claim.lock)
        _claim = _claim.outer
    release()


@contextlib.contextmanager
def given_back_unless_started():
    """Gives the dir back where the block ends before training's first step; releases it either way."""
    try:
        yield
    except BaseException:
        give_back()
        raise
    finally:
        release()


def _entries(path: Path):
    for root, dirs, files in os.walk(path):
        if root == str(path):
            dirs[:] = [d for d in dirs if d != ASIDE]
        for name in dirs + files:
            yield os.path.relpath(os.path.join(root, name), path)


def _restore(path: Path) -> None:
    if (path / ASIDE).is_dir():
        for moved in (path / ASIDE).iterdir():
            if (target := path / moved.name).is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(moved, target)
        (path / ASIDE).rmdir()


def release() -> None:
    global _claim
    while _claim is not None:
        os.close(_claim.lock)
        _claim = _claim.outer
