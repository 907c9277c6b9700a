"""A logger whose package is one of primer's extras, missing: one line before any run dir (Lightning imports it
when the logger is made, inside the run)."""

import importlib.util

from primer.exits import BadConfig


def check_installed(key: str, target: object) -> None:
    from lightning.pytorch.loggers import MLFlowLogger, WandbLogger

    for logger, package in ((MLFlowLogger, "mlflow"), (WandbLogger, "wandb")):  # each package is an extra's name
        if isinstance(target, type) and issubclass(target, logger) and not importable(package):
            raise BadConfig(f'{key}: {logger.__name__} needs the {package} package, which is not installed; '
                            f'pip install -e ".[{package}]", or choose logger=tensorboard, logger=csv or logger=none')


def importable(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ValueError:  # sys.modules holds None for it, which blocks its import
        return False
