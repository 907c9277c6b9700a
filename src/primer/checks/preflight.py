"""A Hydra callback that checks a run, or each value of a grid sweep, before Hydra makes its dir: a
rejected command leaves nothing behind. Each sweep job is checked again as it starts (primer.cli.task)."""

import contextlib
from pathlib import Path

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from primer.checks import failing_closed
from primer.checks.hydra_errors import command, describe_hydra_error
from primer.exits import BadConfig, EndCommand, EnvironmentFault

# (node, key, the values that run, the rule): counts with which a sweep runs nothing, never ends, or fails late
SWEEP_COUNTS = [
    ("sweeper", "n_trials", lambda n: n >= 1, "must be a positive integer (the trials the search runs)"),
    ("sweeper", "n_jobs", lambda n: n >= 1, "must be a positive integer (the trials asked and run together)"),
    ("sweeper", "max_batch_size", lambda n: n >= 1, "must be a positive integer, or null for all jobs in one batch"),
    ("launcher", "n_jobs", lambda n: n != 0, "must be a number of processes, or -1 for one per core (joblib)"),
    # 0 reads as unset: every job would take every core, and jobs that run together would fight over them
    ("launcher", "cpus_per_task", lambda n: n >= 1, "must be a positive integer (the cores each job is given)"),
]


class CheckBeforeRunning(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        from primer.run.checkpoints import resumes_into
        from primer.run import run_dir

        hydra_cfg, path = config.hydra, Path(config.hydra.run.dir).absolute()
        with _refusal_ends_the_command():
            if not str(hydra_cfg.sweeper._target_).endswith("BasicSweeper"):  # a search would train one default run
                typed = [o for o in (*hydra_cfg.overrides.hydra, *hydra_cfg.overrides.task) if "hydra.mode=" not in o]
                search = next((o for o in typed if o.startswith(("hparams_search", "hydra/sweeper="))), "hydra.sweeper")
                raise BadConfig(f"{search}: a search runs its trials only as a sweep; add -m: {command(typed, True)}")
            check_job(config, multirun=False)
            run_dir.claim(path, f"hydra.run.dir={hydra_cfg.run.dir}", resumes_here=resumes_into(config, path),
                          hydra_files=tuple(f for f in (hydra_cfg.output_subdir, f"{hydra_cfg.job.name}.log") if f))

    def on_multirun_start(self, config: DictConfig, config_name: str | None = None, **kwargs) -> None:
        from primer.run import run_dir

        with _refusal_ends_the_command():
            for node, key, runs, rule in SWEEP_COUNTS:
                value = config.hydra[node].get(key)
                if isinstance(value, int) and not isinstance(value, bool) and not runs(value):
                    raise BadConfig(f"hydra.{node}.{key}={value}: {rule}")
            grid = str(config.hydra.sweeper._target_).endswith("BasicSweeper")  # a search's trials are drawn later
            for job in _each_value_once(config, config_name) if grid else [config]:
                check_job(job, multirun=True)
            run_dir.claim_sweep(config.hydra.sweep.dir, f"hydra.sweep.dir={config.hydra.sweep.dir}")


def checked_before_running(hydra_cfg: DictConfig) -> bool:
    """Whether CheckBeforeRunning has checked this config: a run's, never a sweep job's (only its values)."""
    return hydra_cfg.mode != RunMode.MULTIRUN and any(str(c.get("_target_", "")).endswith(
        f"preflight.{CheckBeforeRunning.__name__}") for c in (hydra_cfg.get("callbacks") or {}).values())


def check_job(config: DictConfig, multirun: bool) -> None:
    """primer's rules, the real signatures and where the job runs; any failure is a BadConfig."""
    from primer.checks.scaleout import check_scale_out
    from primer.checks.validation import check

    with failing_closed("the command's config"):
        check(config)
        check_scale_out(config, multirun)


@contextlib.contextmanager
def _refusal_ends_the_command():  # Hydra would turn an Exception from a callback into a warning, and run the job
    try:
        with failing_closed("the command's config"):
            yield
    except (BadConfig, EnvironmentFault) as error:
        raise EndCommand(error) from None


def _each_value_once(config: DictConfig, config_name: str | None):
    """The first job's config, then the first job's with each other value of the grid, one at a time."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType

    typed = [*config.hydra.overrides.task, *(f"{k}={v}" for k, v in (config.hydra.sweeper.params or {}).items())]
    loader = GlobalHydra.instance().config_loader()  # glob(*) over a group needs its options
    values = []
    for o in OverridesParser.create(config_loader=loader).parse_overrides(typed):
        if o.is_interval_sweep():  # Hydra's basic sweeper would say only that it cannot
            raise BadConfig(f"{o.input_line}: a grid sweep takes values (a,b), range() or choice(); interval() is a "
                            f"search space: add hparams_search=optuna to draw {o.key_or_group} from it")
        values.append([f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override()
                      else [o.input_line])
        if not values[-1]:  # a sweep of no jobs would end at once, exit 0, with an empty summary
            glob = o.value_type == ValueType.GLOB_CHOICE_SWEEP
            if glob and (options := loader.get_group_options(o.key_or_group)):
                raise BadConfig(f"{o.input_line}: matches no {o.key_or_group}; choose from {', '.join(options)}")
            raise BadConfig(f"{o.input_line}: sweeps no value{' (glob() picks options of a config group)' * glob}; "
                            f"list one or more: {o.key_or_group}=a,b")
    first = [options[0] for options in values]
    others = [[*first[:i], value, *first[i + 1:]] for i, options in enumerate(values) for value in options[1:]]
    for job in [first, *others]:  # 1 + 3 + 1 composes for a 4 x 2 grid
        try:
            cfg = compose(config_name, overrides=job, return_hydra_config=True)
        except Exception as error:  # noqa: BLE001 - whatever Hydra raises, said in one line
            raise describe_hydra_error(error, typed, config_name) from None  # the sweep as typed: what to fix
        cfg.hydra.launcher, cfg.hydra.sweeper = config.hydra.launcher, config.hydra.sweeper  # not run mode's
        yield cfg
