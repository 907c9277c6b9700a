"""The sweep summary, from what the job dirs hold: summary.csv and summary.md (a row per job) and loss_curves.png.
A file it cannot read is data too: its job failed. `python -m primer.sweeps.report DIR` rebuilds it."""

import argparse
import csv
import io
import json
import logging
import math
import re
import shlex
import sys
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from primer import exits
from primer.exits import BadConfig, EndCommand, EnvironmentFault, SweepFailed, environment_fault, first_line
from primer.run.dashboard import KEY_METRICS, TRAIN_LOSS
from primer.run.experiment import logdir_of, write_experiment
from primer.run.files import EVENT_FILES, FAILURE_FILE, INTERRUPTED_FILE, METRICS_FILE, PRUNED_FILE, RUN_FILE
from primer.writes import write_atomic

TABLES, PLOT = ("summary.csv", "summary.md"), "loss_curves.png"
NO_PLOT = f"{PLOT} not drawn: it needs matplotlib; pip install -e '.[sweeps]' (or pip install matplotlib)"
NO_CURVES = f"{PLOT} not drawn: no job wrote its loss curve to TensorBoard (logger=tensorboard does)"
COLUMNS = ["job", "overrides", "status", "reason", "steps", "wall_time_s"]
UNREADABLE = "cannot read"  # a row's reason, where a file of the job is damaged
SWEEP_CONFIG = "multirun.yaml"  # written by the sweeper as the sweep starts, before any job
SEARCHED_ENV = "PRIMER_OPTUNA_SEARCHED"  # hydra.job.env_set key: the keys an Optuna search draws, comma-separated
log = logging.getLogger(__name__)


def record_failure(job_dir: str | Path, error: BaseException) -> None:
    """Leaves why a job failed in its dir; on a full disk only in the log (its row says it did not finish)."""
    reason = f"{type(error).__name__}: {first_line(error)}"
    try:
        write_atomic(Path(job_dir) / FAILURE_FILE, reason + "\n")
    except OSError as fault:
        log.error(f"{reason} (not recorded in {FAILURE_FILE}: {environment_fault(fault) or fault})")


def record_interrupted(job_dir: str | Path, stop: exits.Interrupted) -> None:
    write_atomic(Path(job_dir) / INTERRUPTED_FILE, stop.stopped + "\n")  # a continued sweep resumes it


class SweepSummary(Callback):
    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs) -> None:
        job_dir = Path(config.hydra.runtime.output_dir)
        if job_return.status == JobStatus.FAILED and not (job_dir / FAILURE_FILE).exists():
            try:
                _ = job_return.return_value  # a failed job's raises its exception: Hydra's public way to it
            except Exception as error:  # noqa: BLE001  whatever the task raised is the job's reason
                record_failure(job_dir, error)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            rows = summarize_sweep(sweep_dir)
        except OSError as error:  # Hydra would turn it into a warning and exit 0
            if (fault := environment_fault(error)) is None:
                raise
            raise EndCommand(fault) from error
        if ending := sweep_ending(rows, sweep_dir / "summary.md"):
            exits.sweep_failed(ending)


def summarize_sweep(root: Path, planned: list[list[str]] | None = None, at_sweep_end: bool = True,
                    dirs: list[Path] | None = None) -> list[dict]:
    """Writes the tables and the plot, prints the table, and at a sweep's end HPARAMS' columns; `planned` (every
    job's overrides) where a signal stopped the sweep: a `not started` row for each planned job without a dir."""
    dirs = job_dirs(root) if dirs is None else dirs
    rows = [summarize(d, stopped=planned is not None) for d in dirs]
    started = {_job_number(d.name) for d in dirs}
    rows += [dict(zip(COLUMNS, [str(n), " ".join(job), "not started", "", None, None]))
             for n, job in enumerate(planned or []) if str(n) not in started]
    metrics = sorted({k for row in rows for k in row} - set(COLUMNS))
    table_csv = io.StringIO(newline="")
    writer = csv.DictWriter(table_csv, [*COLUMNS, *metrics])
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(root / "summary.csv", table_csv.getvalue())
    shown = [{**row, "overrides": " ".join(shown_overrides(d))} for d, row in zip(dirs, rows)]
    table = markdown_table(shown + rows[len(dirs):], [m for m in KEY_METRICS if m in metrics])
    write_atomic(root / "summary.md", table + "\n")
    for row in rows:
        if row["reason"].startswith(UNREADABLE):
            print(f"note: job {_job_number(row['job'])} counts as failed: {row['reason']}", file=sys.stderr)
    events = any(map(has_events, dirs))
    files = [*TABLES, PLOT] if events and plot_loss_curves(root, dirs, rows[:len(dirs)]) else list(TABLES)
    print(f"\nSweep summary ({', '.join(files)} in {root}):\n\n{table}")
    if PLOT not in files:
        print(NO_PLOT if events else NO_CURVES)
    if events:
        print(f"\ntensorboard --logdir {shlex.quote(str(root))}")
    for logdir in filter(None, [root, logdir_of(root)] if at_sweep_end else []):  # HPARAMS': it and outputs/
        write_experiment(logdir)
    return rows


def sweep_ending(rows: list[dict], summary: Path) -> SweepFailed | EnvironmentFault | None:
    """Jobs that did not finish: exit 4, or 5 where one failed for the machine, which a re-run will not mend."""
    failed = [row for row in rows if row["status"] == "failed"]
    line = f"{len(failed)} of {len(rows)} jobs failed; see {summary}"
    machine = f"{EnvironmentFault.__name__}: "
    if faults := [row for row in failed if row["reason"].startswith(machine)]:
        jobs = ", ".join(_job_number(row["job"]) for row in faults)
        return EnvironmentFault(f"{line}; job {jobs} for the machine: {faults[0]['reason'].removeprefix(machine)}")
    return SweepFailed(line) if failed else None


def job_dirs(root: Path) -> list[Path]:
    """The run dir itself, or the job dirs of the sweep that last ran in root, in job order."""
    if (root / ".hydra").is_dir():
        return [root]
    jobs = [d for d in root.iterdir() if (d / ".hydra").is_dir() and _of_last_sweep(root, d)]
    return sorted(jobs, key=lambda d: (int(m.group()) if (m := re.match(r"\d+", d.name)) else math.inf, d.name))


def _of_last_sweep(root: Path, job_dir: Path) -> bool:
    """Whether Hydra wrote the job's .hydra/ since the sweep wrote multirun.yaml (file times of one file system)."""
    try:
        return (job_dir / ".hydra" / "overrides.yaml").stat().st_mtime_ns >= (root / SWEEP_CONFIG).stat().st_mtime_ns
    except FileNotFoundError:
        return True  # no record of when the sweep began (another sweeper): every job dir is the sweep's


def summarize(job_dir: Path, stopped: bool = False) -> dict:
    """One job's row. `stopped`: a signal stopped the sweep, so a job with no record of why was stopped too."""
    unreadable: list[str] = []
    metrics, failure, pruned, where, run = (read_data(job_dir / name, parse, unreadable) for name, parse in [
        (METRICS_FILE, lambda t: {k: float(v) for k, v in json.loads(t).items()}), (FAILURE_FILE, str.strip),
        (PRUNED_FILE, str.strip), (INTERRUPTED_FILE, str.strip), (RUN_FILE, _run)])
    overrides, loss = typed_overrides(job_dir, unreadable), (metrics or {}).get(TRAIN_LOSS, 0.0)
    status, reason = next((status, reason) for status, reason, when in [
        ("failed", "; ".join(unreadable), unreadable), ("failed", failure, failure is not None),
        ("pruned", pruned, pruned is not None), ("interrupted", where, where is not None),
        ("interrupted", "stopped with the sweep before it saved a checkpoint: it starts afresh",
         stopped and not metrics),
        ("failed", f"no {METRICS_FILE}: the job did not finish", not metrics),
        ("failed", f"diverged: {TRAIN_LOSS}={loss}", not math.isfinite(loss)), ("ok", "", True)] if when)
    return dict(zip(COLUMNS, [job_dir.name, " ".join(overrides), status, reason, *(run or (None, None))]),
                **(metrics or {}))


def _run(text: str) -> tuple[int, float]:
    run = json.loads(text)  # what the run measured about itself (primer.run.results), never file times
    return run.get("steps"), round(run["wall_time_s"], 2)


def read_data(path: Path, parse, unreadable: list[str] | None = None):
    """`parse` of the file's text; None where there is none, or where it cannot be read (then named in `unreadable`)."""
    try:
        return parse(path.read_text()) if path.exists() or path.is_symlink() else None
    except Exception as error:  # noqa: BLE001 - whatever a damaged file makes its parser raise, it stays data
        if unreadable is not None:
            unreadable.append(f"{UNREADABLE} {path}: {type(error).__name__}: {first_line(error)}")
        return None


def typed_overrides(job_dir: Path, unreadable: list[str] | None = None) -> list[str]:
    """The job's overrides as typed: `${...}` in them is text, never resolved (a sweep dir is data)."""
    def parse(text: str) -> list[str]:
        overrides = OmegaConf.to_container(OmegaConf.create(text))  # YAML's safe loader: a `!!python/` tag is refused
        if not isinstance(overrides, list):
            raise ValueError(f"not a list of overrides but a {type(overrides).__name__}")  # noqa: TRY004 - data
        return [str(o) for o in overrides]

    return read_data(job_dir / ".hydra" / "overrides.yaml", parse, unreadable) or []


def shown_overrides(job_dir: Path) -> list[str]:
    """A trial's drawn overrides, rounded (the keys its .hydra/hydra.yaml names, read as data); others as typed."""
    keys = read_data(job_dir / ".hydra" / "hydra.yaml",
                     lambda t: OmegaConf.select(OmegaConf.create(t), f"hydra.job.env_set.{SEARCHED_ENV}"))
    overrides = typed_overrides(job_dir)
    return [rounded(o) for o in overrides if o.partition("=")[0] in str(keys).split(",")] if keys else overrides


def rounded(override: str) -> str:
    """`optimizer.lr=0.0006431172050131992` -> `optimizer.lr=0.0006431`; integers and names as they are."""
    key, _, text = override.partition("=")
    try:
        return override if text.lstrip("-").isdigit() else f"{key}={float(text):.4g}"
    except ValueError:
        return override


def has_events(job_dir: Path) -> bool:
    return any(job_dir.glob(EVENT_FILES))  # not under logger=csv, none or []


def loss_curve(job_dir: Path) -> tuple[list[int], list[float]]:
    """The train/loss points the job's TensorBoard events hold, every one."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # not a line per event file read
    events = EventAccumulator(str(job_dir), size_guidance={"scalars": 0})  # 0: keep every point
    events.Reload()
    points = events.Scalars(TRAIN_LOSS) if TRAIN_LOSS in events.Tags()["scalars"] else []
    return [p.step + 1 for p in points], [p.value for p in points]  # Lightning counts from 0: step 1 is the first


def varied(jobs: list[list[str]]) -> list[str]:
    """The override keys whose values differ between jobs (a job without the key counts as a value of its own)."""
    values = [dict(o.partition("=")[::2] for o in overrides) for overrides in jobs]
    keys = dict.fromkeys(k for v in values for k in v)
    return [k for k in keys if len({v.get(k) for v in values}) > 1]


def markdown_table(rows: list[dict], metrics: list[str]) -> str:
    columns = ["job", "overrides", "status", "steps", "wall time (s)", *metrics]  # no metric: no empty column
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for row in rows:
        status = f"{row['status']}: {row['reason']}" if row["reason"] else row["status"]
        cells = [_job_number(row["job"]), f"`{row['overrides']}`" if row["overrides"] else "(defaults)", status,
                 *("" if row[c] is None else row[c] for c in ("steps", "wall_time_s")),
                 *(f"{row[m]:.4g}" if m in row else "" for m in metrics)]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _job_number(name: str) -> str:
    return m.group() if (m := re.match(r"\d+(?=_)", name)) else name  # `3_model=manual,...` -> `3`


def plot_loss_curves(root: Path, dirs: list[Path], rows: list[dict]) -> bool:
    """Every job's train/loss on a log scale, labelled by what sets it apart; False without matplotlib."""
    try:
        import matplotlib.figure  # not pyplot: no backend to choose, no global figure to close
    except ImportError:
        return False

    typed = [typed_overrides(d) for d in dirs]  # a value may hold a space: `+note='a b'`
    keys = varied(typed)
    # fixed margins: tight_layout would measure every text by drawing the figure an extra time
    ax = matplotlib.figure.Figure(figsize=(8, 5)).subplots(
        gridspec_kw={"left": 0.1, "right": 0.97, "bottom": 0.1, "top": 0.93})
    for i, (job_dir, row) in enumerate(zip(dirs, rows)):
        if finite := [(s, v) for s, v in zip(*loss_curve(job_dir)) if math.isfinite(v) and v > 0]:
            label = " ".join(o for o in typed[i] if o.partition("=")[0] in keys) or row["overrides"] or "defaults"
            every = max(len(finite) // 8, 1)  # ~8 markers a curve, shifted per job: jobs may share a curve
            ax.plot(*zip(*finite), linestyle=("-", "--", ":", "-.")[i % 4], marker="os^vDx"[i % 6],
                    markevery=(i * every // len(rows), every), markersize=6, fillstyle="none",
                    label=f"{_job_number(row['job'])}: {label}{' (failed)' * (row['status'] == 'failed')}")
    what = f"{len(rows)} jobs varying {', '.join(keys)}" if keys else rows[0]["overrides"] or "defaults"
    ax.set(yscale="log", xlabel="step", ylabel=f"{TRAIN_LOSS} (summed squared error)", title=f"{TRAIN_LOSS}: {what}")
    if ax.lines:
        ax.legend(fontsize=8)
    png = io.BytesIO()
    ax.figure.savefig(png, format="png", dpi=100)
    write_atomic(root / PLOT, png.getvalue())
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m primer.sweeps.report", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="a run dir or a sweep dir (outputs/multirun/<sweep>)")
    root = parser.parse_args(argv).dir
    with exits.command_line():
        if not root.is_dir() or not (dirs := job_dirs(root)):
            raise BadConfig(f"{root}: not a run or sweep dir; give a dir that holds .hydra/ or job dirs with .hydra/")
        summarize_sweep(root, at_sweep_end=False, dirs=dirs)


if __name__ == "__main__":
    main()
