"""The sweeper's config, its samplers (hydra/sweeper/sampler) and pruners (hydra/sweeper/pruner).

Registered only where Optuna is installed (the `sweeps` extra): without it `hydra/sweeper=primer_optuna`
is a missing choice, which primer reports as "not installed". Optuna itself is not imported here:
Hydra imports this module at every start.
"""

from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.primer_optuna_sweeper.sweeper.OptunaSweeper"
    # the sampler and pruner are built by the sweeper, once it knows the study (and the sampler's seed)
    _recursive_: bool = False
    defaults: list = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}])
    sampler: Any = MISSING
    pruner: Any = MISSING
    direction: Any = "minimize"  # or a list, one per value the task returns
    # None: in memory; any SQLAlchemy URL; journal:///PATH: Optuna's JournalStorage in a file
    storage: str | None = None
    study_name: str | None = None
    n_trials: int = 20
    n_jobs: int = 2  # trials asked, launched and told together
    max_failure_rate: float = 0.0
    params: dict | None = None
    # a name for each value the task returns: optuna-dashboard's axis (study.set_metric_names)
    metric_names: list | None = None
    # seconds between a running trial's heartbeats in a database storage; a trial silent for twice as long
    # was left running by a search that stopped, and the next search that joins the study marks it failed
    heartbeat_s: int | None = 60


SAMPLERS = {  # name: the sampler and the arguments people set (Optuna's defaults)
    "tpe": ("TPESampler", {"n_startup_trials": 10, "n_ei_candidates": 24, "multivariate": False,
                           "group": False, "constant_liar": False}),
    "random": ("RandomSampler", {}),
    "grid": ("GridSampler", {}),  # its search space: the params, which must all be discrete
    "cmaes": ("CmaEsSampler", {"sigma0": None, "n_startup_trials": 1, "restart_strategy": None,
                               "use_separable_cma": False, "with_margin": False}),  # needs `pip install cmaes`
    "nsgaii": ("NSGAIISampler", {"population_size": 50, "mutation_prob": None, "crossover_prob": 0.9,
                                 "swapping_prob": 0.5}),
    "qmc": ("QMCSampler", {"qmc_type": "sobol", "scramble": False}),  # needs scipy
    "gp": ("GPSampler", {"n_startup_trials": 10, "deterministic_objective": False}),  # needs scipy
}
PRUNERS = {
    "none": ("NopPruner", {}),
    "median": ("MedianPruner", {"n_startup_trials": 5, "n_warmup_steps": 0, "interval_steps": 1, "n_min_trials": 1}),
    "percentile": ("PercentilePruner", {"percentile": 25.0, "n_startup_trials": 5, "n_warmup_steps": 0,
                                        "interval_steps": 1, "n_min_trials": 1}),
    "successive_halving": ("SuccessiveHalvingPruner", {"min_resource": "auto", "reduction_factor": 4,
                                                       "min_early_stopping_rate": 0, "bootstrap_count": 0}),
    "hyperband": ("HyperbandPruner", {"min_resource": 1, "max_resource": "auto", "reduction_factor": 3,
                                      "bootstrap_count": 0}),
}

if find_spec("optuna") is not None:
    store = ConfigStore.instance()
    store.store(group="hydra/sweeper", name="primer_optuna", node=OptunaSweeperConf, provider="primer")
    for name, (cls, kwargs) in SAMPLERS.items():
        seeded = {} if name == "grid" else {"seed": None}
        store.store(group="hydra/sweeper/sampler", name=name, provider="primer",
                    node={"_target_": f"optuna.samplers.{cls}", **seeded, **kwargs})
    for name, (cls, kwargs) in PRUNERS.items():
        store.store(group="hydra/sweeper/pruner", name=name, provider="primer",
                    node={"_target_": f"optuna.pruners.{cls}", **kwargs})
