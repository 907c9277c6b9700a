"""What a sweep prints: a line as it starts, the model summary once, one line per job as it ends,
then the sweep summary (primer.sweeps.report). The rest of what a job says, Lightning's lines, progress,
warnings and errors included, goes into the job's own log (`<job dir>/<job name>.log`, Hydra's file).

Each job's line comes from what the job wrote (primer.sweeps.report.summarize), so the console, the job's
files and the summary's row agree.
"""

import contextlib
import itertools
import logging
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from primer import exits
from primer.config import key_and_value, override, remember_swept_keys
from primer.exits import Interrupted
from primer.run.dashboard import KEY_METRICS as FIRST_METRICS


class SweepStart(Callback):
    """Hydra callback: the sweep's first line says where it goes and where each job's log is."""

    sweep_dir: str | None = None  # this command's sweep: where a fault without a path happened (primer.cli.train)
    overrides: list[str] = []  # the sweep's command line, as Hydra parsed it: what continues it
    planned: list[list[str]] | None = None  # a grid's jobs, each job's overrides, in order; None for a search

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        remember_swept_keys(config)  # before the sweeper names any job's dir
        SweepStart.sweep_dir = config.hydra.sweep.dir
        SweepStart.overrides = [*config.hydra.overrides.task, *config.hydra.overrides.hydra]
        SweepStart.planned = grid(config)
        if "optuna" in str(config.hydra.sweeper.get("_target_", "")):
            colour_only_on_a_terminal()
        print(f"sweep into {config.hydra.sweep.dir}: a line per job as it ends; "
              f"each job's full log is <job dir>/{config.hydra.job.name}.log", flush=True)


def grid(config: DictConfig) -> list[list[str]] | None:
    """Every job of a grid sweep, as Hydra's basic sweeper lists them (its params, then the command line's
    overrides; the product of their values, in order); None for another sweeper, whose jobs are drawn."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return None
    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.get("params") or {}).items()]
    loader = GlobalHydra.instance().config_loader()  # glob(*) over a group needs its options
    parsed = OverridesParser.create(config_loader=loader).parse_overrides([*params, *config.hydra.overrides.task])
    values = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override()
              else [f"{o.get_key_element()}={o.get_value_element_as_str()}"] for o in parsed]
    return [list(job) for job in itertools.product(*values)]


def interrupted(stop: BaseException) -> Interrupted:
    """Ctrl-C or SIGTERM stopped the sweep: its summary so far (each job finished, failed, interrupted or not
    started), and the one command that continues it into the same dir: the jobs that finished are skipped,
    the interrupted one goes on from its checkpoint, the others run (primer.sweeps.sweep_resume)."""
    from primer.sweeps.report import summarize_sweep

    signum = getattr(stop, "signum", signal.SIGINT)
    sweep_dir = Path(SweepStart.sweep_dir)
    if not sweep_dir.is_dir():  # stopped before Hydra made it: nothing ran
        return exits.stopped_before_training(signum)
    rows = summarize_sweep(sweep_dir, SweepStart.planned or [])
    ran = [row for row in rows if row["status"] == "interrupted"]
    where = f"job {ran[0]['job'].partition('_')[0]}: {ran[0]['reason']}" if ran else "between jobs"
    finished = sum(row["status"] in ("ok", "pruned") for row in rows)
    return Interrupted(f"{exits.signal_name(signum)} stopped the sweep in {where}; {finished} of {len(rows)} jobs "
                       f"finished; continue the sweep with: {continue_command(str(sweep_dir))}", signum)


def continue_command(sweep_dir: str) -> str:
    """The sweep's command line again, into its own dir (a default dir's name holds the time: a new one
    otherwise), quoted so that it runs as printed."""
    kept = [o for o in SweepStart.overrides if key_and_value(o)[0] not in ("hydra.sweep.dir", "hydra.mode")]  # -m: the mode
    return " ".join(["python -m primer.train -m", *map(shlex.quote, [*kept, override("hydra.sweep.dir", sweep_dir)])])


@contextlib.contextmanager
def one_line_per_job() -> Iterator[None]:
    """Runs a sweep job with its output in its log, and prints its one line when it ends, however it ends.
    Job 0 shows its model summary on the console too: one per sweep."""
    hydra_cfg = HydraConfig.get()
    job_dir, num = Path(hydra_cfg.runtime.output_dir), hydra_cfg.job.num
    root = logging.getLogger()
    files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    consoles = [h for h in root.handlers if isinstance(h, logging.StreamHandler) and h not in files]
    log_path = Path(files[0].baseFilename) if files else job_dir / f"{hydra_cfg.job.name}.log"
    only = _model_summary if num == 0 else _nothing
    console = sys.stdout
    for handler in consoles:
        handler.addFilter(only)
    try:
        with open(log_path, "a", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield
    finally:
        for handler in consoles:
            handler.removeFilter(only)
        if _rank() == 0:  # a job of several submitit tasks: one line, as one metrics.json
            print(job_line(num, job_dir, " ".join(hydra_cfg.overrides.task)), file=console, flush=True)


def job_line(num: int, job_dir: Path, overrides: str) -> str:
    """`#0 optimizer.lr=1e-4  train/loss 2.478e-06  val/loss 2.412e-06  val/r2 1  (1.2 s)`, or the reason it failed:
    the job's row of the sweep summary."""
    from primer.sweeps.report import summarize
    from primer.sweeps.searched import shown_overrides

    if not (job_dir / ".hydra").is_dir():  # hydra.output_subdir=null: no row, and no summary either
        return f"#{num} {overrides}  ended; what it wrote is in {job_dir}"
    row = summarize(job_dir)
    shown = " ".join(shown_overrides(job_dir, row["overrides"].split(" "))) if row["overrides"] else ""
    if row["status"] != "ok":  # failed, or pruned
        return f"#{num} {shown}  {row['status']}: {row['reason']}"
    values = "  ".join(f"{name} {row[name]:.4g}" for name in FIRST_METRICS if name in row)
    took = f"  ({row['wall_time_s']:.1f} s)" if row["wall_time_s"] is not None else ""
    return f"#{num} {shown}  {values}{took}"


OPTUNA_LINE = "%(log_color)s[%(levelname)1.1s %(asctime)s]%(reset)s %(message)s"  # the layout of Optuna's own lines


def colour_only_on_a_terminal() -> None:
    """Optuna's lines ("Trial 3 finished with value ...") carry colour codes wherever stderr goes;
    a file or a pipe gets them plain. Its own format, through colorlog, which leaves out colour
    codes for a stream that is not a terminal."""
    import colorlog
    import optuna

    optuna.logging.disable_default_handler()
    logger = logging.getLogger("optuna")
    if not any(isinstance(h.formatter, colorlog.ColoredFormatter) for h in logger.handlers):
        handler = logging.StreamHandler()  # stderr, as Optuna's
        handler.setFormatter(colorlog.ColoredFormatter(OPTUNA_LINE, stream=handler.stream))
        logger.addHandler(handler)


def _rank() -> int:
    from lightning.pytorch.utilities import rank_zero_only  # set by the Trainer, or by the environment

    return rank_zero_only.rank


def _model_summary(record: logging.LogRecord) -> bool:
    from lightning.pytorch.callbacks import model_summary

    return record.name == model_summary.log.name


def _nothing(record: logging.LogRecord) -> bool:
    return False
