"""Whether a config value fits a parameter of the callable it is passed to, judged by pydantic.

The real signatures are the schema: `trainer.*` is checked against `lightning.Trainer.__init__`,
`model.*` against the net's constructor, `optimizer.*` against the optimizer's. A config value is
what JSON holds (null, true, 1, "a", [..], {..}), so pydantic judges it as strict JSON input: YAML's
`true` is no number and `1` no `true`, a list stands for a tuple, a string for a path, and every item
of a list or mapping is checked. What is primer's own is `describe`, which says what a hint allows
in the words of a config.
"""

import collections.abc
import functools
import inspect
import json
import logging
import types
import typing
from pathlib import PurePath

from pydantic import ConfigDict, TypeAdapter, ValidationError

# A class no config spells (a Logger, a Tensor) is judged by isinstance, which no JSON value passes.
_CLASSES_BY_ISINSTANCE = ConfigDict(arbitrary_types_allowed=True)


def import_target(target_name: str):
    """The class or function a `_target_` names, by Hydra's get_object, without the three lines Hydra logs
    when it cannot be imported: the caller says what is wrong in one."""
    from hydra.utils import get_object

    hydra_log = logging.getLogger("hydra.utils")
    disabled, hydra_log.disabled = hydra_log.disabled, True
    try:
        return get_object(target_name)
    finally:
        hydra_log.disabled = disabled


def parameters(target) -> tuple[dict[str, typing.Any], bool]:
    """(name -> type hint, takes **kwargs) of a class's __init__ or a function, without `self`."""
    function = target.__init__ if inspect.isclass(target) else target
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # a hint that names what cannot be imported here: judge by the signature alone
        hints = {}
    names = {name: hints.get(name, typing.Any) for name, p in signature.parameters.items()
             if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    kinds = {p.kind for p in signature.parameters.values()}
    takes_any_keyword = inspect.Parameter.VAR_KEYWORD in kinds
    if inspect.isclass(target) and takes_any_keyword and inspect.Parameter.VAR_POSITIONAL in kinds:
        # `__init__(self, *args, own=..., **kwargs)` hands the rest to its base (primer's RunLogger):
        # the base's arguments are this class's too
        base = next((b for b in target.__mro__[1:] if "__init__" in vars(b)), object)
        if base is not object:
            inherited, takes_any_keyword = parameters(base)
            names = {**inherited, **names}
    if takes_any_keyword and (handed_on := _keywords_handed_on(target)) is not None:
        names, takes_any_keyword = {**handed_on[0], **names}, handed_on[1]
    return names, takes_any_keyword


def _keywords_handed_on(target) -> tuple[dict[str, typing.Any], bool] | None:
    """The arguments a class's **kwargs go to, where Lightning documents it: TensorBoardLogger hands them
    to tensorboard's SummaryWriter, all but log_dir, which it makes from save_dir, name and version."""
    if not inspect.isclass(target):
        return None
    from lightning.pytorch.loggers import TensorBoardLogger

    if not issubclass(target, TensorBoardLogger):
        return None
    from torch.utils.tensorboard import SummaryWriter  # Lightning's choice where tensorboard is installed

    names, takes_any_keyword = parameters(SummaryWriter)
    names.pop("log_dir", None)
    return names, takes_any_keyword


def accepts(hint, value) -> bool:
    """Whether a plain config value (None, bool, int, float, str, list, dict) fits the type hint."""
    if _builds(value):  # Hydra builds an object from it, which only the constructor can judge
        return _takes_objects(hint)
    adapter = _adapter(hint)
    if adapter is None:  # a hint pydantic has no schema for: the constructor judges the value when it is called
        return True
    try:
        adapter.validate_json(json.dumps(value), strict=True)
    except ValidationError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def _adapter(hint) -> TypeAdapter | None:
    """pydantic's validator for a hint, built once: building it costs more than using it."""
    try:
        return TypeAdapter(hint, config=_CLASSES_BY_ISINSTANCE)
    except Exception:
        return None


def _builds(value) -> bool:
    """Whether a value is, or holds, a `_target_` mapping."""
    if isinstance(value, dict):
        return "_target_" in value or any(_builds(v) for v in value.values())
    return isinstance(value, list) and any(_builds(v) for v in value)


def _takes_objects(hint) -> bool:
    """Whether a hint allows, anywhere in it, an object of a class that no config value is (a Profiler)."""
    if hint is typing.Any:
        return True
    if inspect.isclass(hint) and typing.get_origin(hint) is None:
        return hint.__module__ not in ("builtins", "typing", "collections.abc") and not issubclass(hint, PurePath)
    return any(_takes_objects(arg) for arg in typing.get_args(hint) if not isinstance(arg, list))  # not Callable's


def describe(hint) -> str:
    """What a hint allows, in the words of a config: 'an integer or null', "one of 16, 32, '16-true'"."""
    words, literals = [], []
    for arg in _flatten(hint):
        if typing.get_origin(arg) is typing.Literal:
            literals += typing.get_args(arg)
        elif (word := _word(arg)) and word not in words:
            words.append(word)
    if literals:
        spelled = dict.fromkeys(str(v) for v in literals)  # 16 and '16' read the same on a command line
        words.insert(0, "one of " + ", ".join(spelled))
    if not words:
        return "a value of another kind"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _flatten(hint) -> list:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [a for arg in typing.get_args(hint) for a in _flatten(arg)]
    return [hint]


def _word(hint) -> str | None:
    simple = {type(None): "null", bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in simple:
        return simple[hint]
    origin = typing.get_origin(hint)
    if inspect.isclass(origin) and issubclass(origin, collections.abc.Mapping):
        return "a mapping"
    if inspect.isclass(origin) and issubclass(origin, collections.abc.Iterable):
        return "a list"
    if inspect.isclass(hint) and issubclass(hint, PurePath):
        return "a path"
    return None  # a class no command line can spell
