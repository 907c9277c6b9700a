"""The search: join the study, then ask, launch and tell, `n_jobs` trials at a time."""

import logging
import math
import warnings
from importlib.util import find_spec
from pathlib import Path

import optuna
from hydra.core.plugins import Plugins
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from primer.config import hydra_quoted
from primer.exits import BadConfig, EndCommand, Ending, SweepFailed
from primer.sweeps import studies  # also registers ${study_name:}, which the search config resolves
from primer.sweeps.report import SEARCHED_ENV, SWEEP_CONFIG, rounded, summarize_sweep
from primer.writes import write_atomic

from ._space import grid, search_space

log = logging.getLogger(__name__)
NEEDS = {"optuna.samplers.CmaEsSampler": "cmaes", "optuna.samplers.QMCSampler": "scipy",
         "optuna.samplers.GPSampler": "scipy"}  # packages Optuna does not install


class OptunaSearch:
    def __init__(self, sampler, pruner, direction, storage, study_name, n_trials, n_jobs, max_failure_rate,
                 params=None, metric_names=None, heartbeat_s=None) -> None:
        self.sampler_cfg, self.pruner_cfg = sampler, pruner
        self.directions = [str(d) for d in direction] if OmegaConf.is_list(direction) else [str(direction)]
        self.storage, self.study_name = storage, study_name
        self.n_trials, self.n_jobs, self.max_failure_rate = n_trials, n_jobs, max_failure_rate
        self.params = params or {}
        self.metric_names = list(metric_names) if metric_names else None
        self.heartbeat_s = heartbeat_s

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.config, self.sweep_dir = config, Path(config.hydra.sweep.dir)
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function)

    def sweep(self, arguments: list[str]) -> None:
        try:
            self._search(arguments)
        except Ending as ending:  # past Hydra, to primer.exits: a refused sweep or storage, or one that failed
            raise EndCommand(ending) from ending.__cause__

    def _search(self, arguments: list[str]) -> None:
        if self.storage is None and not str(self.pruner_cfg._target_).endswith("NopPruner"):
            raise BadConfig("hydra.sweeper.pruner: a pruner needs hydra.sweeper.storage (trials report to it from "
                            "their jobs); set a storage, or hydra/sweeper/pruner=none")
        if self.metric_names is not None and len(self.metric_names) != len(self.directions):
            raise BadConfig(f"hydra.sweeper.metric_names={list(self.metric_names)}: give one name per direction "
                            f"({', '.join(self.directions)})")
        needs = NEEDS.get(self.sampler_cfg._target_)
        if needs and find_spec(needs) is None:  # the sampler would import it only at its first relative sample
            raise BadConfig(f"hydra.sweeper.sampler: {self.sampler_cfg._target_} needs {needs}; pip install {needs}")
        try:
            space, fixed = search_space([f"{k}={v}" for k, v in self.params.items()] + list(arguments))
            study, storage, seed, joined = studies.join(
                self.storage, self.study_name, self.directions, lambda seed: self._sampler(space, seed),
                instantiate(self.pruner_cfg), seed=self.sampler_cfg.get("seed"), heartbeat_s=self.heartbeat_s)
        except (ValueError, ImportError) as error:  # a sweep Optuna cannot search, a sampler's missing package
            raise BadConfig(f"hydra.sweeper: {error}") from error
        self._name_metrics(study)
        shown = studies.shown(self.storage) if self.storage else "memory"
        log.info(f"Optuna study '{study.study_name}' in {shown}: search {joined + 1} on it, "
                 f"sampler seed {seed}; searching {', '.join(space)}"
                 + (f"; every trial: {' '.join(f'{k}={v}' for k, v in fixed.items())}" if fixed else ""))
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        # as Hydra's own sweeper: the sweep's config, and when it began (the summary counts the jobs since)
        write_atomic(self.sweep_dir / SWEEP_CONFIG, OmegaConf.to_yaml(self.config))
        with studies.reaching(self.storage), warnings.catch_warnings():
            # Optuna's note on every ask: the heartbeats are the sweeper's own, beaten while the jobs run
            warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
            self._trials(study, storage, space, fixed)

    def _trials(self, study: optuna.Study, storage, space: dict, fixed: dict[str, str]) -> None:
        n_trials = self.n_trials
        if isinstance(study.sampler, optuna.samplers.GridSampler):
            n_trials = min(n_trials, math.prod(len(v) for v in grid(space).values()))
        job_idx = 0
        while job_idx < n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, n_trials - job_idx))]
            with studies.heartbeats(storage, study, trials, self.heartbeat_s):
                returns = self.launcher.launch([self._overrides(t, fixed) for t in trials], initial_job_idx=job_idx)
            job_idx += len(returns)
            running = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
            failed = [self._tell(study, trial, ret, running[trial.number].user_attrs)
                      for trial, ret in zip(trials, returns)]
            if sum(failed) / len(returns) > self.max_failure_rate:  # the summary so far, and exit 4 (primer.exits)
                summarize_sweep(self.sweep_dir)
                raise SweepFailed(f"{sum(failed)} of {len(returns)} trials failed (hydra.sweeper.max_failure_rate="
                                  f"{self.max_failure_rate}); see {self.sweep_dir / 'summary.md'}")
        self._save_results(study)

    def _name_metrics(self, study: optuna.Study) -> None:
        """optuna-dashboard labels its axes with the study's metric names (else "Objective 0")."""
        if self.metric_names is None or study.metric_names == self.metric_names:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # experimental since Optuna 3.2
            study.set_metric_names(self.metric_names)

    def _sampler(self, space, seed):
        cfg = OmegaConf.to_container(self.sampler_cfg)
        if seed is not None:
            cfg["seed"] = seed
        if cfg["_target_"] == "optuna.samplers.GridSampler":
            return instantiate(cfg, search_space=grid(space))
        return instantiate(cfg)

    @staticmethod
    def _overrides(trial: optuna.trial.Trial, fixed: dict[str, str]) -> list[str]:
        # the trial travels in the job's Hydra config; primer.sweeps.pruning reports to it
        return [*(f"{k}={v}" for k, v in {**trial.params, **fixed}.items()),
                f"++hydra.job.env_set.{studies.TRIAL_ENV}={trial.number}",
                f"++hydra.job.env_set.{studies.STUDY_ENV}={hydra_quoted(trial.study.study_name, quote=chr(39))}",
                f"++hydra.job.env_set.{SEARCHED_ENV}='{','.join(trial.params)}'"]  # what its lines show

    def _tell(self, study: optuna.Study, trial: optuna.trial.Trial, ret, user_attrs: dict) -> bool:
        """Records the job's ending in the study; True if it failed."""
        if studies.PRUNED_AT in user_attrs:  # the job stopped itself (primer.sweeps.pruning), as the stored trial says
            _record(study, trial, state=TrialState.PRUNED)
            return False
        try:
            values = [float(ret.return_value)] if len(self.directions) == 1 else [float(v) for v in ret.return_value]
            failure = None if len(values) == len(self.directions) and all(map(math.isfinite, values)) else \
                f"it returned {values} for directions {self.directions}"
        except Exception as error:  # noqa: BLE001 - the job raised, or returned no number: a failed trial
            failure = f"{type(error).__name__}: {error}"
        if failure is not None:
            log.warning(f"trial {trial.number} failed: {failure}")
        _record(study, trial, **({"values": values} if failure is None else {"state": TrialState.FAIL}))
        return failure is not None

    def _save_results(self, study: optuna.Study) -> None:
        """optimization_results.yaml, as hydra-optuna-sweeper writes it: the best of the whole study so far."""
        results: dict = {"name": "optuna"}
        try:
            if len(self.directions) == 1:
                results.update(best_params=study.best_trial.params, best_value=study.best_trial.value)
            else:
                results["solutions"] = [{"params": t.params, "values": t.values} for t in study.best_trials]
        except ValueError:  # no trial completed
            results["best_params"] = None
        path = self.sweep_dir / "optimization_results.yaml"
        write_atomic(path, OmegaConf.to_yaml(OmegaConf.create(results)))
        log.info(f"Best of study '{study.study_name}': {_best(study, self.metric_names)} ({path.name} has every digit)")


def _best(study: optuna.Study, names: list[str] | None) -> str:
    """`val/loss 559 at trial 2: optimizer=sgd optimizer.lr=0.002372`: the best trials, their values rounded."""
    names = names or [f"value {i}" for i in range(len(study.directions))]
    if not (best := study.best_trials):  # [] where no trial completed
        return "no trial completed"
    return "; ".join(" ".join(f"{n} {v:.4g}" for n, v in zip(names, t.values)) + f" at trial {t.number}: "
                     + " ".join(rounded(f"{k}={v}") for k, v in t.params.items()) for t in best[:3])


def _record(study: optuna.Study, trial: optuna.trial.Trial, **outcome) -> None:
    try:
        study.tell(trial, **outcome)
    except RuntimeError:
        # GridSampler calls study.stop() once its grid is covered, which only an optimize() loop accepts;
        # the trial's state is stored all the same
        if not isinstance(study.sampler, optuna.samplers.GridSampler):
            raise
