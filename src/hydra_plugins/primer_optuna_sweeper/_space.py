"""Hydra's sweep syntax as Optuna distributions, meaning what it means in Hydra.

    choice(a, b)                  CategoricalDistribution([a, b])
    range(1, 4)                   IntDistribution(1, 3): 1, 2, 3, as Hydra's grid runs it
    range(0.1, 0.4, 0.1)          FloatDistribution(0.1, 0.3, step=0.1)
    interval(1e-5, 1e-2)          FloatDistribution(1e-5, 1e-2); Hydra reads interval(1, 8) as floats too
    int(interval(8, 64))          IntDistribution(8, 64): Hydra's cast makes the ends ints
    tag(log, interval(...))       the same with log=True
    a,b (choice without the word) CategoricalDistribution([a, b])
    shuffle(...) of a range       CategoricalDistribution of its values
    x (no sweep)                  a fixed value, given to every trial as it is
"""

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution


def search_space(arguments: list[str]) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """The distributions and the fixed values of `key=value` arguments (params, then the command line)."""
    space, fixed = {}, {}
    for override in OverridesParser.create().parse_overrides(arguments):
        key = override.get_key_element()
        if override.is_sweep_override():
            space[key] = distribution(override)
            fixed.pop(key, None)
        else:
            fixed[key] = override.get_value_element_as_str()
            space.pop(key, None)
    return space, fixed


def distribution(override: Override) -> BaseDistribution:
    value = override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if override.is_range_sweep():
        values = list(override.sweep_iterator())  # Hydra's own reading: the end is left out
        if not values:
            raise ValueError(f"{override.input_line}: the range is empty")
        low, high, step = min(values), max(values), abs(value.step)
        if all(isinstance(v, int) for v in values) and isinstance(value.step, int):
            return IntDistribution(low, high, step=step)
        return FloatDistribution(low, high, step=step)
    if override.is_interval_sweep():  # as hydra-optuna-sweeper reads it: int ends, an IntDistribution
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log="log" in value.tags)
        return FloatDistribution(value.start, value.end, log="log" in value.tags)
    raise ValueError(f"{override.input_line}: the Optuna sweeper takes choice, range or interval sweeps")


def grid(space: dict[str, BaseDistribution]) -> dict[str, list]:
    """GridSampler's search space: every value of each (discrete) distribution."""
    values = {}
    for key, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            values[key] = list(dist.choices)
        elif dist.step is not None and not getattr(dist, "log", False):
            count = round((dist.high - dist.low) / dist.step) + 1
            values[key] = [dist.low + i * dist.step for i in range(count)]
        else:
            raise ValueError(f"{key}: the grid sampler needs choice() or range(), not an interval")
    return values
