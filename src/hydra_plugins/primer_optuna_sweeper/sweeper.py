"""The Sweeper class Hydra finds; the work is in _impl (not imported at Hydra's start: it needs Optuna)."""

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from primer.sweeps import studies  # noqa: F401  registers ${study_name:}, which hydra.sweeper.study_name resolves


class OptunaSweeper(Sweeper):
    """Asks Optuna for `n_jobs` trials at a time, launches them as Hydra jobs, tells Optuna what they returned."""

    def __init__(self, **config) -> None:
        from ._impl import OptunaSearch

        self.search = OptunaSearch(**config)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.search.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        self.search.sweep(arguments)
