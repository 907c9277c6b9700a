"""Every way a primer command ends, its one line and its exit code, in one place.

    0    done
    1    unexpected: a bug (the traceback is printed)
    2    bad input: a key, a value or a file the command cannot run with
    3    diverged: the training loss became NaN or inf
    4    sweep with failures: every job ran, some failed (the summary says which)
    5    environment: the machine failed the command (a full disk, a read-only dir, a server gone); the
         line names the cause and the path, and nothing written before is lost
    130  Ctrl-C, 143 SIGTERM: stopped (a checkpoint to resume from is saved once training has started)

`train`, `eval` and `report` run inside `command_line()`, which turns an `Ending` into its line and
code. Hydra turns exceptions from its callbacks into warnings and prints its own report of the task's,
so an ending raised under Hydra travels out wrapped in `EndCommand`, a BaseException Hydra lets pass.
"""

import contextlib
import errno
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

UNEXPECTED, BAD_INPUT, DIVERGED, SWEEP_FAILED, ENVIRONMENT = 1, 2, 3, 4, 5


class Ending(Exception):
    """A way a command ends that is not a bug; str() is the one line the user reads."""

    exit_code = UNEXPECTED
    label = "error"


class BadConfig(Ending):
    """A config, file or command line the command must not run with."""

    exit_code = BAD_INPUT


class Diverged(Ending):
    """The training loss became NaN or inf."""

    exit_code = DIVERGED


class Interrupted(Ending):
    """A signal stopped the command; the message says what was saved and how to resume."""

    label = "interrupted"

    def __init__(self, message: str, signum: int = signal.SIGINT, stopped: str | None = None):
        super().__init__(message)
        self.exit_code = 128 + signum
        self.signum = signum
        self.stopped = stopped or message  # where it stopped and what it saved, without how to go on


class SweepFailed(Ending):
    """Every job of a sweep ran, and some failed."""

    exit_code = SWEEP_FAILED


class EnvironmentFault(Ending):
    """Not the input's fault: the disk is full, a dir is read-only, a database server went away."""

    exit_code = ENVIRONMENT


# OSErrors that say the machine failed the command, not that the input was wrong
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def environment_fault(error: BaseException, where: str | Path | None = None) -> EnvironmentFault | None:
    """The EnvironmentFault behind `error`, wherever in its chain of causes it is: an OSError of
    ENVIRONMENT_ERRNOS, named with its path (else with `where`, the dir the command was writing
    into), or an EnvironmentFault already; None for any other error."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, EnvironmentFault):
            return error
        if isinstance(error, OSError) and error.errno in ENVIRONMENT_ERRNOS:
            path = error.filename or (f"a file in {where}" if where else None)
            return EnvironmentFault(f"{error.strerror or os.strerror(error.errno)}" + (f": {path}" if path else ""))
        error = error.__cause__ or error.__context__
    return None


def _thread_fault(args: threading.ExceptHookArgs) -> None:
    """A thread that failed for the machine (TensorBoard's writer on a full disk) leaves its fault for the
    command's one line, not a traceback: it ends the command with exit 5 even where the main thread went on."""
    if (fault := environment_fault(args.exc_value)) is None:
        _default_thread_hook(args)
    else:
        _thread_faults.append(fault)


_default_thread_hook = threading.excepthook
_thread_faults: list[EnvironmentFault] = []


class EndCommand(BaseException):
    """Carries an Ending through Hydra, which would otherwise report or swallow it."""

    def __init__(self, ending: Ending):
        super().__init__(str(ending))
        self.ending = ending


_sweep_failures: list[SweepFailed | EnvironmentFault] = []


def sweep_failed(ending: SweepFailed | EnvironmentFault) -> None:
    """Recorded by the sweep summary; the command's exit code is set when the command ends."""
    _sweep_failures.append(ending)


USER_FULL_ERROR = "PRIMER_USER_HYDRA_FULL_ERROR"  # HYDRA_FULL_ERROR as the user set it (let_hydra_raise)


def show_tracebacks() -> bool:
    """HYDRA_FULL_ERROR=1, Hydra's own switch, as the user set it, also shows the traceback behind a one-line error."""
    return os.environ.get(USER_FULL_ERROR, os.environ.get("HYDRA_FULL_ERROR")) == "1"


def let_hydra_raise() -> None:
    """Makes Hydra raise its errors (unknown key, bad override) instead of printing them, so that they
    reach command_line() and end in one line; the user's own HYDRA_FULL_ERROR is kept for show_tracebacks."""
    os.environ.setdefault(USER_FULL_ERROR, os.environ.get("HYDRA_FULL_ERROR", "0"))
    os.environ["HYDRA_FULL_ERROR"] = "1"


def first_line(error: BaseException) -> str:
    """The first line of an error's message; its type's name where the message is empty."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


@contextlib.contextmanager
def setting_up(what: str, started=lambda: False):
    """Turns an error raised while `what` is built, or before training's first step, into BadConfig naming it."""
    try:
        yield
    except Ending:
        raise
    except Exception as error:
        if started() or environment_fault(error):
            raise  # a full disk during set-up is the machine's fault, not the config's
        cause = error
        while type(cause).__name__ == "InstantiationException" and cause.__cause__ is not None:
            cause = cause.__cause__  # Hydra's wrapper says only which target failed; its cause says why
        shown = f"{type(cause).__name__}: {first_line(cause)}"
        raise BadConfig(f"{what}: {shown} (HYDRA_FULL_ERROR=1 shows where)") from error


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Python raises KeyboardInterrupt for Ctrl-C, so that both end a start-up alike."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__()
        self.signum = signum


def signal_name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def stopped_before_training(signum: int) -> Interrupted:
    """Ctrl-C or SIGTERM before the first training step: nothing saved, the run dir given back."""
    return Interrupted(f"{signal_name(signum)} before training started; nothing to resume", signum)


def _terminate(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def command_line():
    """Ends the command with one line and its exit code for every Ending, Ctrl-C and SIGTERM included."""
    _sweep_failures.clear()
    _thread_faults.clear()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    previous_thread_hook, threading.excepthook = threading.excepthook, _thread_fault
    try:
        try:
            yield
        except EndCommand as wrapped:
            raise wrapped.ending from wrapped.ending.__cause__
        if _thread_faults:
            raise _thread_faults[0]
        if _sweep_failures:
            raise _sweep_failures.pop()
    except KeyboardInterrupt as stop:
        signum = getattr(stop, "signum", signal.SIGINT)
        _end(stopped_before_training(signum))
    except Exception as error:
        ending = error if isinstance(error, Ending) else environment_fault(error)
        if ending is None:
            raise  # a bug: its traceback is what is needed
        if show_tracebacks():
            traceback.print_exc()
        _end(ending)
    finally:
        threading.excepthook = previous_thread_hook
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _end(ending: Ending) -> None:
    sys.stdout.flush()
    print(f"{ending.label}: {ending}", file=sys.stderr)
    sys.exit(ending.exit_code)
