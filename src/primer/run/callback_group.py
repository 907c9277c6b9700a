"""primer's own callbacks, handed to Lightning as one: Lightning calls every hook of every callback at every
step, so six small callbacks cost six dispatches a hook; as one they cost one, calling only the parts that
override the hook."""

import lightning as L

HOOKS = [name for name, value in vars(L.Callback).items()
         if callable(value) and (name.startswith("on_") or name in ("setup", "teardown"))]


class CallbackGroup(L.Callback):
    """Several callbacks as one, in order. The parts keep no state in checkpoints: primer's own do not."""

    def __init__(self, *parts: L.Callback):
        self.parts = parts
        self.hooks = {name: [getattr(part, name) for part in parts
                             if getattr(type(part), name) is not getattr(L.Callback, name)] for name in HOOKS}


def _calls_the_parts(name: str):
    def hook(self: CallbackGroup, *args, **kwargs) -> None:
        for part_hook in self.hooks[name]:
            part_hook(*args, **kwargs)

    hook.__name__ = hook.__qualname__ = name
    return hook


for _name in HOOKS:
    setattr(CallbackGroup, _name, _calls_the_parts(_name))


def find(callbacks: list[L.Callback], kind: type[L.Callback]) -> L.Callback:
    """The callback of type `kind` among `callbacks`, or among the parts of a CallbackGroup there."""
    parts = [p for c in callbacks for p in (c.parts if isinstance(c, CallbackGroup) else [c])]
    return next(p for p in parts if isinstance(p, kind))
