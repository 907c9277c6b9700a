"""Whether a config value fits a parameter of the callable it is passed to, judged by its type hints.

The real signatures are the schema: `trainer.*` is checked against `lightning.Trainer.__init__`,
`model.*` against the net's constructor, `optimizer.*` against the optimizer's. A value from a
config is None, a bool, an int, a float, a str, a list or a dict; anything else a hint names
(an Accelerator, a Logger, ...) cannot come from a command line, and is not what is checked.
"""

import collections.abc
import inspect
import numbers
import types
import typing
from pathlib import PurePath


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
    return names, any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())


def accepts(hint, value) -> bool:
    """Whether a config value (None, bool, int, float, str, list, dict) fits the type hint."""
    if hint is typing.Any or isinstance(hint, typing.TypeVar):
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(accepts(arg, value) for arg in args)
    if origin is typing.Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    if value is None:
        return hint is type(None)
    if isinstance(value, bool):
        return hint is bool
    if origin is not None:  # list[int], dict[str, int], Iterable[...], tuple[...]
        return _accepts_container(origin, args, value)
    if hint is float:  # an int is a float, as in PEP 484's numeric tower
        return isinstance(value, numbers.Real)
    if hint in (int, str):
        return isinstance(value, hint)
    if inspect.isclass(hint) and issubclass(hint, PurePath):
        return isinstance(value, str)
    if inspect.isclass(hint) and isinstance(value, dict):
        return "_target_" in value  # instantiate builds it
    return False


def _accepts_container(origin, args, value) -> bool:
    if isinstance(value, dict):
        if not (inspect.isclass(origin) and issubclass(origin, collections.abc.Mapping)):
            return False
        return not args or all(accepts(args[0], k) and accepts(args[1], v) for k, v in value.items())
    if isinstance(value, list) and inspect.isclass(origin) and issubclass(origin, collections.abc.Iterable):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(accepts(a, v) for a, v in zip(args, value))
        return not args or all(accepts(args[0], v) for v in value)
    return False


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
