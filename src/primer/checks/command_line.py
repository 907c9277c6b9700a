"""The shape of a primer.train command line: Hydra's flags, the overrides, and the line to type instead.

Hydra's parser (argparse) reads flags first and overrides after them; a flag after the overrides ends in
argparse's usage block. `flags_after_overrides` says in one line where the flag goes, and `command`
writes the command a hint gives (primer.checks.hydra_errors, primer.checks.preflight).
"""

import os
import shlex

from primer.exits import BadConfig

# Hydra's flags that take a value (`--cfg job`): the rest of a command line is overrides
FLAGS_WITH_VALUE = {"--cfg", "-c", "--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp", "--package",
                    "-p", "--experimental-rerun"}


def config_dir(argv: list[str]) -> str | None:
    """The --config-dir a command line adds to primer's conf/, as an absolute path; None without one."""
    for flag, value in zip(argv, [*argv[1:], ""]):
        if flag.startswith("--config-dir="):
            flag, _, value = flag.partition("=")
        if flag in ("--config-dir", "-cd") and value:
            return os.path.abspath(value)
    return None


def command(args: list[str], multirun: bool = False) -> str:
    """The primer.train command line of these arguments, as a shell reads it (with -m first for a sweep)."""
    return shlex.join(["python", "-m", "primer.train", *(["-m"] if multirun else []), *args])


def flags_after_overrides(argv: list[str]) -> BadConfig | None:
    """`hydra.sweep.dir=X -m seed=0,1`: Hydra's parser (argparse) reads no override after a flag that follows an
    override, and would answer with its usage block; the line says to put the flags first."""
    flags, overrides, late_flag, misplaced = [], [], None, False
    args = iter(argv)
    for arg in args:
        if arg.startswith("-"):
            late_flag = late_flag or (arg if overrides else None)
            flags += [arg, next(args, "")] if arg in FLAGS_WITH_VALUE else [arg]
        else:
            misplaced = misplaced or late_flag is not None
            overrides.append(arg)
    if not misplaced:
        return None
    return BadConfig(f"{late_flag}: Hydra reads its flags before the overrides; put it first: "
                     f"{command([*filter(None, flags), *overrides])}")
