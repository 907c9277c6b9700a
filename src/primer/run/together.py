"""primer's own callbacks, handed to Lightning as one.

Lightning calls every hook of every callback at every step, each inside a profiler context,
whether the callback overrides it or not: six hooks a step per callback, about 2 us each on the
primer's 2-core CPU. primer's bookkeeping (run summary, divergence check, Ctrl-C, the config in
checkpoints, ...) is six small callbacks that override few hooks; as one they cost one callback's
dispatch, and each hook calls only the parts that override it.
"""

import lightning as L

HOOKS = [name for name, value in vars(L.Callback).items()
         if callable(value) and (name.startswith("on_") or name in ("setup", "teardown"))]


class Together(L.Callback):
    """Several callbacks as one: each Lightning hook calls, in order, the parts that override it.
    The parts keep no state in checkpoints (state_dict): primer's own do not."""

    def __init__(self, *parts: L.Callback):
        self.parts = parts
        self._hooks = {name: [getattr(part, name) for part in parts
                              if getattr(type(part), name) is not getattr(L.Callback, name)] for name in HOOKS}


def _calls_the_parts(name: str):
    def hook(self: Together, *args, **kwargs) -> None:
        for part_hook in self._hooks[name]:
            part_hook(*args, **kwargs)

    hook.__name__ = hook.__qualname__ = name
    return hook


def find(callbacks: list[L.Callback], kind: type[L.Callback]) -> L.Callback:
    """The callback of type `kind` among `callbacks`, or among the parts of a Together there."""
    parts = [p for c in callbacks for p in (c.parts if isinstance(c, Together) else [c])]
    return next(p for p in parts if isinstance(p, kind))


for _name in HOOKS:
    setattr(Together, _name, _calls_the_parts(_name))
