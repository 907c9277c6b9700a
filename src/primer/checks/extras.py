"""Loggers whose package comes with one of primer's extras: without it, one line that names the extra.

Lightning imports a logger's package only when the logger is made, inside the run, after its dir exists;
this check runs with the others, before (primer.checks.validation).
"""

import importlib.util

from primer.exits import BadConfig


def check_installed(key: str, target: object) -> None:
    """Raises BadConfig where `target` (what `key`'s _target_ names) is a logger whose package is missing."""
    from lightning.pytorch.loggers import MLFlowLogger, WandbLogger

    # the logger, the package it imports, the extra of primer's that installs it (pyproject.toml)
    for logger, package, extra in ((MLFlowLogger, "mlflow", "mlflow"), (WandbLogger, "wandb", "wandb")):
        if isinstance(target, type) and issubclass(target, logger) and not importable(package):
            raise BadConfig(f'{key}: {logger.__name__} needs the {package} package, which is not installed; '
                            f'pip install -e ".[{extra}]", or choose logger=tensorboard, logger=csv or logger=none')


def importable(package: str) -> bool:
    """Whether `import package` would find it, without importing it."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # ValueError: sys.modules holds None for it, which blocks its import
        return False
