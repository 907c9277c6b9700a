"""What a sweep prints: a line as it starts, the model summary once, one line per job as it ends (from
what the job wrote, as its summary row), then the summary; the rest of a job's output goes to its log."""

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
from primer.run.dashboard import KEY_METRICS


class SweepStart(Callback):
    sweep_dir: str | None = None  # this command's sweep: where a fault without a path happened (primer.cli.train)
    overrides: tuple[str, ...] = ()  # the sweep's command line, as Hydra parsed it: what continues it
    planned: list[list[str]] | None = None  # a grid's jobs, each job's overrides, in order; None for a search

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        from hydra.core.global_hydra import GlobalHydra
        from hydra.core.override_parser.overrides_parser import OverridesParser

        remember_swept_keys(config)  # before the sweeper names any job's dir
        SweepStart.sweep_dir = config.hydra.sweep.dir
        SweepStart.overrides = (*config.hydra.overrides.task, *config.hydra.overrides.hydra)
        SweepStart.planned = None
        if str(config.hydra.sweeper._target_).endswith("BasicSweeper"):  # its params, then the command line's
            params = [f"{key}={value}" for key, value in (config.hydra.sweeper.get("params") or {}).items()]
            parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())  # for glob(*)
            values = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override()
                      else [f"{o.get_key_element()}={o.get_value_element_as_str()}"]
                      for o in parser.parse_overrides([*params, *config.hydra.overrides.task])]
            SweepStart.planned = [list(job) for job in itertools.product(*values)]
        print(f"sweep into {config.hydra.sweep.dir}: a line per job as it ends; "
              f"each job's full log is <job dir>/{config.hydra.job.name}.log", flush=True)


def interrupted(stop: BaseException) -> exits.Interrupted:
    """The summary so far of a sweep a signal stopped, and the command that continues it."""
    from primer.sweeps.report import summarize_sweep

    signum = getattr(stop, "signum", signal.SIGINT)
    sweep_dir = Path(SweepStart.sweep_dir)
    if not sweep_dir.is_dir():  # stopped before Hydra made it: nothing ran
        return exits.stopped_before_training(signum)
    rows = summarize_sweep(sweep_dir, SweepStart.planned or [])
    ran = [row for row in rows if row["status"] == "interrupted"]
    where = f"job {ran[0]['job'].partition('_')[0]}: {ran[0]['reason']}" if ran else "between jobs"
    finished = sum(row["status"] in ("ok", "pruned") for row in rows)
    # into its own dir: a default dir's name holds the time
    kept = [o for o in SweepStart.overrides if key_and_value(o)[0] not in ("hydra.sweep.dir", "hydra.mode")]
    again = shlex.join(["python", "-m", "primer.train", "-m", *kept, override("hydra.sweep.dir", str(sweep_dir))])
    return exits.Interrupted(f"{exits.signal_name(signum)} stopped the sweep in {where}; {finished} of {len(rows)} "
                             f"jobs finished; continue the sweep with: {again}", signum)


@contextlib.contextmanager
def one_line_per_job() -> Iterator[None]:
    """Runs a sweep job with its output in its log (job 0's model summary on the console too), then prints its line."""
    from lightning.pytorch.callbacks import model_summary
    from lightning.pytorch.utilities import rank_zero_only  # set by the Trainer, or by the environment

    from primer.run.console import filtered

    hydra_cfg = HydraConfig.get()
    job_dir, num, console = Path(hydra_cfg.runtime.output_dir), hydra_cfg.job.num, sys.stdout
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    consoles = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler) and h not in files]
    log_path = Path(files[0].baseFilename) if files else job_dir / f"{hydra_cfg.job.name}.log"

    def only(record: logging.LogRecord) -> bool:
        return num == 0 and record.name == model_summary.log.name

    try:
        with filtered(only, consoles), open(log_path, "a", buffering=1) as log, contextlib.redirect_stdout(log), \
                contextlib.redirect_stderr(log):
            yield
    finally:
        if rank_zero_only.rank == 0:  # a job of several submitit tasks: one line, as one metrics.json
            print(job_line(num, job_dir, " ".join(hydra_cfg.overrides.task)), file=console, flush=True)


def job_line(num: int, job_dir: Path, overrides: str) -> str:
    """`#0 optimizer.lr=1e-4  train/loss 2.478e-06  val/loss 2.412e-06  val/r2 1  (1.2 s)`, or why it did not finish."""
    from primer.sweeps.report import shown_overrides, summarize

    if not (job_dir / ".hydra").is_dir():  # hydra.output_subdir=null: no row, and no summary either
        return f"#{num} {overrides}  ended; what it wrote is in {job_dir}"
    row, shown = summarize(job_dir), " ".join(shown_overrides(job_dir))
    if row["status"] != "ok":  # failed, or pruned
        return f"#{num} {shown}  {row['status']}: {row['reason']}"
    values = "  ".join(f"{name} {row[name]:.4g}" for name in KEY_METRICS if name in row)
    took = f"  ({row['wall_time_s']:.1f} s)" if row["wall_time_s"] is not None else ""
    return f"#{num} {shown}  {values}{took}"

