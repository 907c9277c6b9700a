"""`python -m primer.train` and `primer-train`; the work is in primer.cli.train.

Heavy imports (torch, Lightning, Hydra) happen inside `main`, after primer.exits has taken over
Ctrl-C and SIGTERM, so that a signal during them ends in one line too.
"""

import sys
import types

from primer import exits


def main() -> None:
    with exits.command_line():
        from primer.cli.train import main as train_command

        train_command()


class _CallableModule(types.ModuleType):
    """`from primer import train` is the function primer.api.train, but once this module has been
    imported (as `primer-train` does), Python binds the name `primer.train` to the module: calling it
    then trains all the same."""

    def __call__(self, *args, **kwargs):
        from primer.api import train

        return train(*args, **kwargs)


if __name__ == "__main__":
    main()
else:
    sys.modules[__name__].__class__ = _CallableModule
