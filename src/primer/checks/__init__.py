"""The checks a command passes before it runs or reads a file: each refuses with primer.exits.BadConfig."""

import contextlib

from primer.exits import BadConfig, Ending, environment_fault, first_line


@contextlib.contextmanager
def failing_closed(where: str):
    """An unexpected error in a check refuses, naming `where`: Hydra would warn and run the job unchecked."""
    try:
        yield
    except Ending:
        raise
    except Exception as error:
        if fault := environment_fault(error):  # the machine's fault (a dir it may not make), not the input's
            raise fault from error
        raise BadConfig(f"{where}: refused: its check failed ({type(error).__name__}: {first_line(error)}); "
                        "nothing was run (HYDRA_FULL_ERROR=1 shows where)") from error


def refused(where: str, why: str) -> BadConfig:
    """A checkpoint's refusal: `where` (ckpt_path=...) and why, in one line."""
    return BadConfig(f"{where}: refused: {why}; nothing was run (use a checkpoint written by primer.train)")


def entries(node: object, key: str = ""):
    """(dotted key, value) of everything in a plain tree, parents first, a list's items as `key[i]`."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for name, child in children:
        child_key = f"{key}[{name}]" if isinstance(node, list) else f"{key}.{name}" if key else str(name)
        yield child_key, child
        yield from entries(child, child_key)
