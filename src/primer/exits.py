"""Every way a primer command ends, its one line and its exit code; and the one owner of the signal handlers.
An ending raised under Hydra travels out wrapped in `EndCommand`, a BaseException that Hydra and Lightning let pass."""

import contextlib
import errno
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

# 0 done; 1 a bug (its traceback is printed); 2 bad input: a key, value or file the command cannot run with;
# 3 the training loss became NaN or inf; 4 a sweep ran every job and some failed; 5 the machine failed the command
# (a full disk, a read-only dir, a server gone): the line names the cause and the path; 128 + the signal: stopped
UNEXPECTED, BAD_INPUT, DIVERGED, SWEEP_FAILED, ENVIRONMENT = 1, 2, 3, 4, 5


class Ending(Exception):
    """A way a command ends that is not a bug; str() is the one line the user reads."""

    exit_code = UNEXPECTED
    label = "error"


class BadConfig(Ending):
    exit_code = BAD_INPUT


class Diverged(Ending):
    exit_code = DIVERGED


class SweepFailed(Ending):
    exit_code = SWEEP_FAILED


class EnvironmentFault(Ending):
    exit_code = ENVIRONMENT


class Interrupted(Ending):
    """Ctrl-C or SIGTERM; `stopped` says where it stopped and what it saved, without how to go on."""

    label = "interrupted"

    def __init__(self, message: str, signum: int = signal.SIGINT, stopped: str | None = None):
        super().__init__(message)
        self.exit_code, self.signum, self.stopped = 128 + signum, signum, stopped or message


class EndCommand(BaseException):
    def __init__(self, ending: Ending):
        super().__init__(str(ending))
        self.ending = ending


# OSErrors that say the machine failed the command, not that the input was wrong
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def causes(error: BaseException | None):
    """`error`, then what it was raised from or while handling, each once (a chain may loop)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def environment_fault(error: BaseException, where: str | Path | None = None) -> EnvironmentFault | None:
    """The EnvironmentFault in `error`'s chain of causes, named with its path (else `where`); None if there is none."""
    for cause in causes(error):
        if isinstance(cause, EnvironmentFault):
            return cause
        if isinstance(cause, OSError) and cause.errno in ENVIRONMENT_ERRNOS:
            path = cause.filename or (f"a file in {where}" if where else None)
            return EnvironmentFault(f"{cause.strerror or os.strerror(cause.errno)}" + (f": {path}" if path else ""))
    return None


_later: list[Ending] = []  # a writer thread's fault, a sweep's failed jobs: the first ends the command


def sweep_failed(ending: SweepFailed | EnvironmentFault) -> None:
    _later.append(ending)


USER_FULL_ERROR = "PRIMER_USER_HYDRA_FULL_ERROR"  # HYDRA_FULL_ERROR as the user set it (let_hydra_raise)


def show_tracebacks() -> bool:
    """HYDRA_FULL_ERROR=1, as the user set it, shows the traceback behind a one-line error too."""
    return os.environ.get(USER_FULL_ERROR, os.environ.get("HYDRA_FULL_ERROR")) == "1"


def let_hydra_raise() -> None:
    """Hydra raises its errors instead of printing them, so that they end in one line here."""
    os.environ.setdefault(USER_FULL_ERROR, os.environ.get("HYDRA_FULL_ERROR", "0"))
    os.environ["HYDRA_FULL_ERROR"] = "1"


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


@contextlib.contextmanager
def setting_up(what: str, started=lambda: False):
    """An error raised while `what` is built, or before training's first step, is BadConfig naming it."""
    try:
        yield
    except Ending:
        raise
    except Exception as error:
        if started() or environment_fault(error):
            raise  # a full disk during set-up is the machine's fault, not the config's
        # Hydra's wrapper says only which target failed; its cause says why
        cause = next((c for c in causes(error) if type(c).__name__ != "InstantiationException"), error)
        raise BadConfig(f"{what}: {type(cause).__name__}: {first_line(cause)} (HYDRA_FULL_ERROR=1 shows where)") \
            from error


def signal_name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def stopped_before_training(signum: int) -> Interrupted:
    return Interrupted(f"{signal_name(signum)} before training started; nothing to resume", signum)


def send_signals_to(handler) -> dict:
    """Ctrl-C and SIGTERM call `handler` (only the main thread may set one); returns the handlers they had."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}


@contextlib.contextmanager
def signals_stop(output_dir=lambda: None, started=lambda: False):
    """Ctrl-C or SIGTERM ends the command in one line: before training started, or after it ended and where the run
    (`output_dir()`) is. While it trains, SaveOnInterrupt has the signals; Lightning gives this handler back."""
    def stop(signum, frame):
        # Lightning's SIGTERM handler calls the one it found (this) too: while training has the signals, stand aside
        if signal.getsignal(signal.SIGINT) is not stop:
            return
        if not started():  # a BaseException: Lightning would exit 1 on Ctrl-C's
            raise EndCommand(stopped_before_training(signum))
        raise EndCommand(Interrupted(f"{signal_name(signum)} after training ended; its checkpoints and logs are in "
                                     f"{output_dir()}", signum))

    previous = send_signals_to(stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def command_line():
    """Ends the command with one line and its exit code for every Ending, Ctrl-C and SIGTERM included."""
    _later.clear()
    previous_thread_hook = threading.excepthook

    def thread_fault(args: threading.ExceptHookArgs) -> None:  # TensorBoard's writer on a full disk: its line ends it
        if (fault := environment_fault(args.exc_value)) is None:
            previous_thread_hook(args)
        else:
            _later.append(fault)

    threading.excepthook = thread_fault
    try:
        with signals_stop():
            try:
                yield
            except EndCommand as wrapped:
                raise wrapped.ending from wrapped.ending.__cause__
            if _later:
                raise _later[0]
    except Exception as error:
        ending = error if isinstance(error, Ending) else environment_fault(error)
        if ending is None:
            raise  # a bug: its traceback is what is needed
        if show_tracebacks():
            traceback.print_exc()
        sys.stdout.flush()
        print(f"{ending.label}: {ending}", file=sys.stderr)
        sys.exit(ending.exit_code)
    finally:
        threading.excepthook = previous_thread_hook
