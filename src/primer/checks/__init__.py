"""The checks a command passes before it runs or reads a file: each refuses with primer.exits.BadConfig."""

import contextlib

from primer.exits import BadConfig, Ending, environment_fault, first_line


@contextlib.contextmanager
def failing_closed(where: str):
    """A check fails closed: an unexpected error inside it is a refusal naming `where` (a file, a key), not an
    error that Hydra turns into a warning before running the job unchecked."""
    try:
        yield
    except Ending:
        raise
    except Exception as error:
        if fault := environment_fault(error):  # the machine's fault (a dir it may not make), not the input's
            raise fault from error
        raise BadConfig(f"{where}: refused: its check failed ({type(error).__name__}: {first_line(error)}); "
                        "nothing was run (HYDRA_FULL_ERROR=1 shows where)") from error
