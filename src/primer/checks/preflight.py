"""The checks Hydra runs before it writes anything: a run's config, or every job of a grid sweep.

`CheckBeforeRunning` is a Hydra callback (conf/train.yaml, hydra.callbacks): Hydra composes the
config, calls `on_run_start` / `on_multirun_start`, and only then makes the run or sweep dir. A
rejected command thus leaves nothing behind, whichever way it was started (`python -m primer.train`,
`primer-train`, `--config-dir`, `--config-name`), an existing run dir keeps its files, and a sweep
with a bad job starts none. A good run's dir is then claimed (primer.run.run_dir) before Hydra writes
into it, so that whatever ends the run before its first step (a signal during set-up, an error
Lightning raises) gives the dir back as it was. Jobs that
Hydra starts elsewhere (submitit, Optuna trials) are checked by the task itself (primer.cli.task).
Hydra's own rejections are put in one line by primer.checks.hydra_errors.
"""

import contextlib
import itertools
from pathlib import Path

from hydra.types import RunMode
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict

from primer.config import key_and_value
from primer.checks import failing_closed
from primer.checks.hydra_errors import command
from primer.checks.hydra_errors import describe_hydra_error
from primer.exits import BadConfig, EndCommand, EnvironmentFault



class CheckBeforeRunning(Callback):
    """Stops a bad run, or a sweep with any bad job, before its dir is made."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        if not _is_grid(config.hydra.sweeper):  # hparams_search=optuna without -m would train one default run
            raise EndCommand(_search_without_multirun(config.hydra))
        _check_or_end(config, multirun=False)
        _claim_run_dir(config)

    def on_multirun_start(self, config: DictConfig, config_name: str | None = None, **kwargs) -> None:
        from primer.run import run_dir

        with _refusal_ends_the_command():  # the jobs are listed here: a failure there ends the command too
            _check_sweep_counts(config.hydra)
            for job in grid_jobs(config, config_name):
                _check_or_end(job, multirun=True)
            # each job's dir is claimed as the job starts (primer.cli.train)
            run_dir.claim_sweep(config.hydra.sweep.dir, f"hydra.sweep.dir={config.hydra.sweep.dir}")


def _claim_run_dir(config: DictConfig) -> None:
    """The run dir is claimed (primer.run.run_dir) before Hydra writes its .hydra/ and log there."""
    from primer.checks.resume import resumes_into
    from primer.run import run_dir

    path = Path(config.hydra.run.dir).absolute()
    hydra_files = (config.hydra.output_subdir, f"{config.hydra.job.name}.log")
    with _refusal_ends_the_command():
        run_dir.claim(path, f"hydra.run.dir={config.hydra.run.dir}", resumes_here=resumes_into(config, path),
                      hydra_files=tuple(f for f in hydra_files if f is not None))


def _search_without_multirun(hydra_cfg: DictConfig) -> BadConfig:
    overrides = [o for o in (*hydra_cfg.overrides.hydra, *hydra_cfg.overrides.task) if not o.startswith("hydra.mode=")]
    typed = next((o for o in overrides if o.startswith(("hparams_search=", "hydra/sweeper="))), "hydra.sweeper")
    return BadConfig(f"{typed}: a search runs its trials only as a sweep; add -m: {command(overrides, multirun=True)}")


def checked_before_running(hydra_cfg: DictConfig) -> bool:
    """Whether CheckBeforeRunning has checked the job about to run, in this process: a run, or a grid job
    under the basic launcher. Jobs started elsewhere (submitit, joblib workers) and a search's trials
    (drawn during the sweep) are checked by the task (primer.cli.task)."""
    configured = any(str(c.get("_target_", "")).endswith(f"preflight.{CheckBeforeRunning.__name__}")
                     for c in (hydra_cfg.get("callbacks") or {}).values())
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return configured
    in_this_process = str(hydra_cfg.launcher._target_).endswith("BasicLauncher")
    return configured and in_this_process and _is_grid(hydra_cfg.sweeper)


def _is_grid(sweeper: DictConfig) -> bool:
    return str(sweeper._target_).endswith("BasicSweeper")


def check_job(config: DictConfig, multirun: bool) -> None:
    """primer's rules, the real signatures and where the job runs; BadConfig says what is wrong, also where a
    check itself fails (each check names its own key or file where it can)."""
    from primer.checks.scaleout import check_scale_out
    from primer.checks.validation import check

    with failing_closed("the command's config"):
        check(config)
        check_scale_out(config, multirun)


def _check_or_end(config: DictConfig, multirun: bool) -> None:
    with _refusal_ends_the_command():
        check_job(config, multirun)


@contextlib.contextmanager
def _refusal_ends_the_command():
    """Hydra turns an Exception from a callback into a warning and runs the job: every one ends the command."""
    try:
        with failing_closed("the command's config"):
            yield
    except (BadConfig, EnvironmentFault) as error:
        raise EndCommand(error) from None


# (node, key, the values that run, what the line says): counts with which a sweep runs no job, never ends, or
# fails only once its dir exists
SWEEP_COUNTS = [
    ("sweeper", "n_trials", lambda n: n >= 1, "must be a positive integer (the trials the search runs)"),
    ("sweeper", "n_jobs", lambda n: n >= 1, "must be a positive integer (the trials asked and run together)"),
    ("sweeper", "max_batch_size", lambda n: n >= 1, "must be a positive integer, or null for all jobs in one batch"),
    ("launcher", "n_jobs", lambda n: n != 0, "must be a number of processes, or -1 for one per core (joblib)"),
    # 0 reads as unset: every job would take every core, and jobs that run together would fight over them
    ("launcher", "cpus_per_task", lambda n: n >= 1, "must be a positive integer (the cores each job is given)"),
]


def _check_sweep_counts(hydra_cfg: DictConfig) -> None:
    for node, key, runs, rule in SWEEP_COUNTS:
        value = hydra_cfg[node].get(key)
        if isinstance(value, int) and not isinstance(value, bool) and not runs(value):
            raise EndCommand(BadConfig(f"hydra.{node}.{key}={value}: {rule}"))


def grid_jobs(config: DictConfig, config_name: str | None) -> list[DictConfig]:
    """The config of every job a basic (grid) sweep will run; the base config for other sweepers,
    whose jobs are drawn during the sweep (each is checked when it starts)."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = list(config.hydra.overrides.task)
    if not _is_grid(config.hydra.sweeper):
        return [config]
    params = config.hydra.sweeper.get("params") or {}
    overrides += [f"{key}={value}" for key, value in params.items()]
    loader = GlobalHydra.instance().config_loader()  # glob(*) over a group needs its options
    try:
        parsed = OverridesParser.create(config_loader=loader).parse_overrides(overrides)
    except Exception as error:
        raise EndCommand(describe_hydra_error(error, overrides, config_name)) from None
    for override in parsed:
        if override.is_interval_sweep():  # Hydra's basic sweeper would say only that it cannot
            raise EndCommand(BadConfig(f"{override.input_line}: a grid sweep takes values (a,b), range() or choice(); "
                                       f"interval() is a search space: add hparams_search=optuna to draw "
                                       f"{override.key_or_group} from it"))
    choices = [[o.input_line] if not o.is_sweep_override() else
               [f"{'+' if o.is_add() else ''}{o.key_or_group}={v}" for v in o.sweep_string_iterator()]
               for o in parsed]
    for override, values in zip(parsed, choices):
        if not values:  # a sweep of no jobs would end at once, exit 0, with an empty summary
            raise EndCommand(BadConfig(_sweeps_nothing(override, loader)))
    jobs = []
    for job in itertools.product(*choices):
        try:
            cfg = compose(config_name, overrides=list(job), return_hydra_config=True)
        except Exception as error:
            raise EndCommand(_sweep_as_typed(describe_hydra_error(error, list(job), config_name), job, parsed)) from None
        with open_dict(cfg):
            # a compose inside the app gives run mode's launcher and sweeper; the sweep's are these
            cfg.hydra.launcher, cfg.hydra.sweeper = config.hydra.launcher, config.hydra.sweeper
        jobs.append(cfg)
    return jobs


def _sweeps_nothing(override, loader) -> str:
    from hydra.core.override_parser.types import ValueType

    key = override.key_or_group
    if override.value_type == ValueType.GLOB_CHOICE_SWEEP:
        if options := loader.get_group_options(key):
            return f"{override.input_line}: matches no {key}; choose from {', '.join(options)}"
        return (f"{override.input_line}: glob() picks options of a config group, and {key} is none; list the values "
                f"to sweep: {key}=a,b")
    return f"{override.input_line}: sweeps no value; give it one or more"


def _sweep_as_typed(bad: BadConfig, job: tuple[str, ...], parsed: list) -> BadConfig:
    """A hint about a swept key, worked out for one job, ends in that job's value (`add it with +key=a`, `did you
    mean +key=a?`); the command to type is the sweep as typed (`+key=a,b`)."""
    message = str(bad)
    for item, override in zip(job, parsed):
        key, value = key_and_value(item)
        about_it = message.startswith((f"{key.lstrip('+')}:", f"{item}:"))
        for mark in ("", "?"):
            if override.is_sweep_override() and about_it and message.endswith(f"={value}{mark}"):
                typed = key_and_value(override.input_line)[1]
                return BadConfig(f"{message[:-len(f'={value}{mark}')]}={typed}{mark}")
    return bad
