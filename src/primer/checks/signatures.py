"""A config value against the signature it is passed to. jsonargparse finds the arguments a target takes, as
for LightningCLI (following **kwargs to where they go); pydantic judges a value as strict JSON against its hint:
YAML's `true` is no number, a list stands for a tuple, a string for a path."""

import contextlib
import functools
import importlib.util
import inspect
import json
import types
import typing

from pydantic import ConfigDict, TypeAdapter, ValidationError

from primer.checks import entries
from primer.exits import BadConfig


def check_installed(key: str, target) -> None:
    """A logger whose extra is not installed, in one line before any run dir (Lightning would fail in the run)."""
    from lightning.pytorch.loggers import MLFlowLogger, WandbLogger

    for logger, package in ((MLFlowLogger, "mlflow"), (WandbLogger, "wandb")):  # each extra is named for its package
        if inspect.isclass(target) and issubclass(target, logger) and not _importable(package):
            raise BadConfig(f'{key}: {logger.__name__} needs the {package} package, which is not installed; '
                            f'pip install -e ".[{package}]", or choose logger=tensorboard, logger=csv or logger=none')


def _importable(package: str) -> bool:
    with contextlib.suppress(ValueError):  # sys.modules holds None for it, which blocks its import
        return importlib.util.find_spec(package) is not None
    return False


@functools.cache
def arguments(target) -> dict[str, typing.Any]:
    """The arguments `target` takes, by name, with their type hints (Any where the hint is not its own)."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    add = parser.add_class_arguments if inspect.isclass(target) else parser.add_function_arguments
    hints = {}
    for function in [c.__init__ for c in reversed(target.__mro__)] if inspect.isclass(target) else [target]:
        with contextlib.suppress(Exception):  # a hint naming what cannot be imported here: the constructor judges it
            hints.update(typing.get_type_hints(function))
    return {name: hints.get(name, typing.Any) for name in add(target, fail_untyped=False)}


def problem(hint, found) -> str | None:
    """What is wrong with a plain config value for the hint, in pydantic's words or the hint's; None where it fits."""
    try:
        _adapter(hint).validate_json(json.dumps(found), strict=True)
    except ValidationError as error:
        spelled = [e for e in error.errors() if e["type"] != "needs_python_object"]  # not a class no config spells
        built = any(k.rpartition(".")[2] == "_target_" for k, _ in entries(found))  # a `_target_` mapping, at any depth
        if not spelled or built and len(spelled) < len(error.errors()):
            return None  # an object (Hydra builds one from a `_target_`), which only its constructor can judge
        return _allowed(hint, found) or "; ".join(dict.fromkeys(
            "".join(f"item {at}: " for at in e["loc"] if isinstance(at, int)) + e["msg"] for e in spelled))
    except Exception:  # a hint pydantic has no schema for: the constructor judges the value
        pass
    return None


def _allowed(hint, found) -> str | None:
    """What a hint of a few values (Literals) or of N items (a tuple) allows, said in place of pydantic's errors."""
    union = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    members = [typing.get_args(m) for m in union if m is not type(None)]  # a Literal's values, a tuple's items
    kinds = {typing.get_origin(m) for m in union if m is not type(None)}
    if kinds == {typing.Literal}:  # and null where the hint is Optional
        values = [*(v for m in members for v in m), *([None] if type(None) in union else [])]
        return f"must be one of {', '.join(dict.fromkeys(v if isinstance(v, str) else json.dumps(v) for v in values))}"
    fixed = kinds == {tuple} and len(members) == 1 and Ellipsis not in members[0] and isinstance(found, list)
    return f"must be {len(members[0])} values, got {len(found)}" if fixed and len(found) != len(members[0]) else None


@functools.cache
def _adapter(hint) -> TypeAdapter:
    return TypeAdapter(hint, config=ConfigDict(arbitrary_types_allowed=True))  # a Logger: by isinstance
