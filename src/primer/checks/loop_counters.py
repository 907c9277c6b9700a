"""The step a resume starts at is the one Lightning's fit loop restores, not the checkpoint's `global_step`.

Lightning writes `global_step` into a checkpoint but never reads it back: a resume restores
`loops.fit_loop`, whose optimizer-step counter becomes `trainer.global_step` (the automatic
optimizer's `step.total.completed`, or manual optimization's `optim_step_progress.total.completed`),
and whose `_batches_that_stepped` numbers the logged steps. A checkpoint whose counters disagree
with each other or with `global_step` is not one Lightning wrote: with the loops at 1000 and
`global_step: 0`, a run of trainer.max_steps=12 would end at once having trained nothing.
"""

from primer.exits import BadConfig

FIT_LOOP = ("loops", "fit_loop")
# the optimizer steps taken, by whether Lightning steps the optimizer (automatic) or the module does (manual)
STEPS = {True: ("epoch_loop.automatic_optimization.optim_progress", "optimizer", "step", "total", "completed"),
         False: ("epoch_loop.manual_optimization.optim_step_progress", "total", "completed")}
BATCHES_THAT_STEPPED = ("epoch_loop.state_dict", "_batches_that_stepped")


def check_loop_counters(checkpoint: dict, automatic: bool, where: str) -> int:
    """The step a fit resumed from `checkpoint` starts at. BadConfig unless `global_step` is the optimizer steps
    of this kind of optimization (`automatic`), the other kind took none, and the batches that stepped are as
    many: one fewer in a checkpoint saved inside a step (ModelCheckpoint's every_n_train_steps)."""
    step = _counter(checkpoint, ("global_step",), where)
    agree = {(*FIT_LOOP, *STEPS[automatic]): (step,), (*FIT_LOOP, *STEPS[not automatic]): (0,),
             (*FIT_LOOP, *BATCHES_THAT_STEPPED): (step - 1, step)}
    for keys, allowed in agree.items():
        if (found := _counter(checkpoint, keys, where)) not in allowed:
            raise BadConfig(f"{where}: refused: its {_shown(keys)} is {found} and its global_step {step}: counters "
                            "Lightning never writes together (a resume starts at the loops' count); nothing was run "
                            "(use a checkpoint written by primer.train)")
    return step


def _counter(checkpoint: dict, keys: tuple[str, ...], where: str) -> int:
    node = checkpoint
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            raise BadConfig(f"{where}: refused: it has no {_shown(keys)}, where Lightning resumes its steps from; "
                            "nothing was run (use a checkpoint written by primer.train)")
        node = node[key]
    if not isinstance(node, int) or isinstance(node, bool) or node < 0:
        raise BadConfig(f"{where}: refused: its {_shown(keys)} is {node!r}, not a count of steps; nothing was run "
                        "(use a checkpoint written by primer.train)")
    return node


def _shown(keys: tuple[str, ...]) -> str:
    return ".".join(keys)
