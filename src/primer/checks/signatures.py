"""Whether a config value fits a parameter of the callable it is passed to, judged by typeguard.

The real signatures are the schema: `trainer.*` is checked against `lightning.Trainer.__init__`,
`model.*` against the net's constructor, `optimizer.*` against the optimizer's. typeguard judges a
value against a hint; what is primer's own is how a config spells things (below) and `describe`,
which says what a hint allows in the words of a config.
"""

import collections.abc
import inspect
import types
import typing
from pathlib import PurePath

import typeguard  # imported with this module, which validation imports only when it judges values
from typeguard import TypeCheckError, check_type_internal


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
    """Whether a plain config value (None, bool, int, float, str, list, dict) fits the type hint."""
    strategy = typeguard.CollectionCheckStrategy.ALL_ITEMS  # every item, not typeguard's default first one
    typeguard.checker_lookup_functions.insert(0, _config_spelling)  # for this check only, not for others
    try:
        typeguard.check_type(_built(value), hint, collection_check_strategy=strategy)
    except TypeCheckError:
        return False
    finally:
        typeguard.checker_lookup_functions.remove(_config_spelling)
    return True


BUILT = object()  # what Hydra instantiates from a `_target_` mapping: an object only the constructor can judge


def _built(value):
    if isinstance(value, dict):
        return BUILT if "_target_" in value else {k: _built(v) for k, v in value.items()}
    return [_built(v) for v in value] if isinstance(value, list) else value


def _config_spelling(origin, args, extras):
    """How a config spells what a hint names, taught to typeguard: a bool is no number (YAML's `true` is
    not 1, as Python's True is), a list stands for a tuple, a string for a path, and a `_target_` mapping
    for what it builds, which only the constructor can judge."""
    if origin is tuple:
        return _tuple
    theirs = getattr(origin, "_is_protocol", False) or typing.is_typeddict(origin)  # typeguard checks these
    if inspect.isclass(origin) and not theirs and (
            origin in (bool, int, float, str) or origin.__module__ not in _TYPEGUARDS_OWN):
        return _instance


_TYPEGUARDS_OWN = ("builtins", "types", "typing", "collections.abc")  # classes typeguard checks its own way
_NUMERIC_TOWER = {float: (int, float)}  # PEP 484: an int is a float


def _instance(value, origin, args, memo) -> None:
    if value is BUILT:  # stands for an object of a class no command line spells, not for a value it does
        if origin.__module__ == "builtins" or issubclass(origin, PurePath):
            raise TypeCheckError("is no value a _target_ builds")
        return
    allowed = (str, origin) if issubclass(origin, PurePath) else _NUMERIC_TOWER.get(origin, origin)
    if (isinstance(value, bool) and origin is not bool) or not isinstance(value, allowed):
        raise TypeCheckError(f"is not {origin.__qualname__}")


def _tuple(value, origin, args, memo) -> None:
    if not isinstance(value, (list, tuple)):  # instantiate passes a config's list on as it is
        raise TypeCheckError("is not a list")
    if args == ((),):  # typeguard's spelling of tuple[()]
        args = ()
    elif not args or args[-1] is Ellipsis:  # tuple, tuple[int, ...]
        args = (args[0] if args else typing.Any,) * len(value)
    if len(args) != len(value):
        raise TypeCheckError(f"has {len(value)} items, not {len(args)}")
    for arg, item in zip(args, value):
        check_type_internal(item, arg, memo)


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
