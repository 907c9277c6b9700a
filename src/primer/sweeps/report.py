"""Sweep summary: one row per job, a table (CSV, Markdown) and every job's loss curve (PNG).

    python -m primer.sweeps.report outputs/multirun/<sweep>    # rebuild the summary of any sweep or run dir

Written at the end of every multirun by the Hydra callback SweepSummary. Everything is read
from what each job dir holds:
`.hydra/overrides.yaml` (label), `metrics.json` (final metrics), `run.json` (steps, and the wall
time the run measured itself; never file times, which move when e.g. primer.eval writes into the
run dir), `failure.txt` (why a job failed): the table and the exit code need no logger and no
callback. The TensorBoard events, where a job wrote them, give the loss curves. A file that cannot be
read (damaged, a dir, a YAML tag) is data too: its job's row says so, and the summary names the file.
A sweep run again into a dir that holds an earlier sweep's jobs summarizes only its own: the job dirs
Hydra wrote since the sweep wrote its `multirun.yaml`. Heavy imports (tensorboard, matplotlib) happen inside the functions that need them.
The plot needs matplotlib, from the `sweeps` extra (`pip install -e ".[sweeps]"`); without it the
summary is the two tables and a line that says how to get the plot.
"""

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
from primer.run.dashboard import KEY_METRICS as TABLE_METRICS
from primer.run.experiment import logdir_of, write_experiment
from primer.run.files import EVENT_FILES, FAILURE_FILE, INTERRUPTED_FILE, PRUNED_FILE
from primer.exits import BadConfig, EndCommand, EnvironmentFault, SweepFailed, environment_fault, first_line
from primer.sweeps.searched import shown_overrides
from primer.writes import write_atomic

TABLES, PLOT = ("summary.csv", "summary.md"), "loss_curves.png"
NO_PLOT = f"{PLOT} not drawn: it needs matplotlib; pip install -e '.[sweeps]' (or pip install matplotlib)"
NO_CURVES = f"{PLOT} not drawn: no job wrote its loss curve to TensorBoard (logger=tensorboard does)"
LINESTYLES, MARKERS = ("-", "--", ":", "-."), ("o", "s", "^", "v", "D", "x")
NOT_STARTED = "not started"  # a job of an interrupted sweep that had not begun
UNREADABLE = "cannot read"  # a row's reason, where a file of the job is damaged
SWEEP_CONFIG = "multirun.yaml"  # written by the sweeper as the sweep starts, before any job
log = logging.getLogger(__name__)


def record_failure(job_dir: str | Path, error: BaseException) -> None:
    """Leaves the one-line reason a job failed in its dir, for the summary. On a full disk the reason is
    only logged: the job has failed all the same, and its row says it did not finish."""
    reason = f"{type(error).__name__}: {first_line(error)}"
    try:
        write_atomic(Path(job_dir) / FAILURE_FILE, reason + "\n")
    except OSError as fault:
        log.error(f"{reason} (not recorded in {FAILURE_FILE}: {environment_fault(fault) or fault})")



def record_interrupted(job_dir: str | Path, stop: exits.Interrupted) -> None:
    """Leaves in the job's dir where a signal stopped it and what it saved: the summary lists the job as
    interrupted, and a continued sweep resumes it (primer.sweeps.sweep_resume)."""
    write_atomic(Path(job_dir) / INTERRUPTED_FILE, stop.stopped + "\n")


class SweepSummary(Callback):
    """Hydra callback: records jobs that raised, and summarizes the sweep when it ends."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs) -> None:
        job_dir = Path(config.hydra.runtime.output_dir)
        if job_return.status == JobStatus.FAILED and not (job_dir / FAILURE_FILE).exists():
            try:
                job_return.return_value  # a failed job's raises its exception: Hydra's public way to it
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


def summarize_sweep(sweep_dir: Path, planned: list[list[str]] | None = None) -> list[dict]:
    """Writes and prints the sweep's summary, at its end or where a signal stopped it (then `planned`, every
    job's overrides in order, adds a row for each job not started); returns its rows."""
    table, rows, files = write_summary(sweep_dir, planned)
    for logdir in (sweep_dir, logdir_of(sweep_dir)):  # HPARAMS' columns, for this sweep and for outputs/
        if logdir is not None:
            write_experiment(logdir)
    print(f"\nSweep summary ({', '.join(files)} in {sweep_dir}):\n\n{table}")
    if PLOT not in files:
        print(why_no_plot(sweep_dir))
    if any(map(has_events, job_dirs(sweep_dir))):
        print(f"\ntensorboard --logdir {shlex.quote(str(sweep_dir))}")
    return rows


def sweep_ending(rows: list[dict], summary: Path) -> SweepFailed | EnvironmentFault | None:
    """Every job ran; the exit code still tells a script that some did not finish: 4, or 5 where one
    failed for the machine (a full disk, a read-only dir), which running the sweep again will not mend."""
    failed = [row for row in rows if row["status"] == "failed"]
    if not failed:
        return None
    line = f"{len(failed)} of {len(rows)} jobs failed; see {summary}"
    machine = f"{EnvironmentFault.__name__}: "
    faults = [row for row in failed if row["reason"].startswith(machine)]
    if not faults:
        return SweepFailed(line)
    jobs = ", ".join(_job_number(row["job"]) for row in faults)
    return EnvironmentFault(f"{line}; job {jobs} for the machine: {faults[0]['reason'].removeprefix(machine)}")


def job_dirs(root: Path) -> list[Path]:
    """The run dir itself, or the job dirs of the sweep that last ran in root, in job order."""
    if (root / ".hydra").is_dir():
        return [root]
    jobs = [d for d in root.iterdir() if (d / ".hydra").is_dir() and _of_last_sweep(root, d)]
    return sorted(jobs, key=lambda d: (int(m.group()) if (m := re.match(r"\d+", d.name)) else math.inf, d.name))


def _of_last_sweep(root: Path, job_dir: Path) -> bool:
    """Whether Hydra wrote the job's .hydra/ since the sweep began: every job a sweep launches gets its
    .hydra/ anew (a job skipped as finished included), a job dir of an earlier, larger sweep does not.
    Both times come from the one file system, so the clocks of the machines that ran the jobs do not count."""
    try:
        return (job_dir / ".hydra" / "overrides.yaml").stat().st_mtime_ns >= (root / SWEEP_CONFIG).stat().st_mtime_ns
    except FileNotFoundError:
        return True  # no record of when the sweep began (another sweeper): every job dir is the sweep's


def summarize(job_dir: Path, stopped: bool = False) -> dict:
    """One job's row: overrides, status and reason, steps, wall time and every final metric. A file the
    summary cannot read makes the job a failed one whose reason names the file. `stopped`: a signal stopped
    the sweep, so a job that neither finished nor recorded why was stopped with it (a joblib worker the
    launcher ended), not failed."""
    unreadable: list[str] = []
    metrics = _read(job_dir / "metrics.json", _metrics, unreadable) or {}
    failure, pruned = _read(job_dir / FAILURE_FILE, str.strip, unreadable), _read(job_dir / PRUNED_FILE, str.strip)
    run = _run_json(job_dir, unreadable)
    overrides = _typed_overrides(job_dir, unreadable)
    status, reason = "ok", ""
    if unreadable:
        status, reason = "failed", "; ".join(unreadable)
    elif failure is not None:
        status, reason = "failed", failure
    elif pruned is not None:
        status, reason = "pruned", pruned
    elif (where := _read(job_dir / INTERRUPTED_FILE, str.strip, unreadable)) is not None:
        status, reason = "interrupted", where
    elif not metrics and stopped:
        status, reason = "interrupted", "stopped with the sweep before it saved a checkpoint: it starts afresh"
    elif not metrics:
        status, reason = "failed", "no metrics.json: the job did not finish"
    elif not math.isfinite(metrics.get("train/loss", 0.0)):
        status, reason = "failed", f"diverged: train/loss={metrics['train/loss']}"
    return {
        "job": job_dir.name,
        "overrides": " ".join(overrides),
        "status": status,
        "reason": reason,
        "steps": run.get("steps"),
        "wall_time_s": round(run["wall_time_s"], 2) if run else None,
        **metrics,
    }


def _read(path: Path, parse, unreadable: list[str] | None = None):
    """`parse` of the file's text; None where there is none, or where it cannot be read: that is then
    added to `unreadable`, with the file's path and why."""
    try:
        return parse(path.read_text()) if path.exists() or path.is_symlink() else None
    except Exception as error:  # noqa: BLE001 - whatever a damaged file makes its parser raise, it stays data
        if unreadable is not None:
            unreadable.append(f"{UNREADABLE} {path}: {type(error).__name__}: {first_line(error)}")
        return None


def _metrics(text: str) -> dict[str, float]:
    return {str(k): float(v) for k, v in json.loads(text).items()}


def _typed_overrides(job_dir: Path, unreadable: list[str] | None = None) -> list[str]:
    """The job's overrides as typed: `${...}` in them is text, never resolved (a sweep dir is data)."""
    return _read(job_dir / ".hydra" / "overrides.yaml", _override_list, unreadable) or []


def _override_list(text: str) -> list[str]:
    overrides = OmegaConf.to_container(OmegaConf.create(text))  # YAML's safe loader: a `!!python/` tag is refused
    if not isinstance(overrides, list):
        raise ValueError(f"not a list of overrides but a {type(overrides).__name__}")
    return [str(o) for o in overrides]


def _run_json(job_dir: Path, unreadable: list[str]) -> dict:
    """What the run measured about itself (primer.run.results.RunSummary): its steps and wall time,
    whatever its logger and callbacks; {} if it stopped before training."""
    return _read(job_dir / "run.json", _run_record, unreadable) or {}


def _run_record(text: str) -> dict:
    run = json.loads(text)
    if not isinstance(run, dict) or not isinstance(run.get("wall_time_s", 0.0), (int, float)):
        raise ValueError("not a run's record (steps, wall_time_s)")
    return run


def has_events(job_dir: Path) -> bool:
    """Whether the job wrote TensorBoard events (not under logger=csv, none or [])."""
    return any(job_dir.glob(EVENT_FILES))


def job_events(job_dir: Path):
    """The job's TensorBoard events, every point kept; None where it wrote none."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not has_events(job_dir):
        return None
    logging.getLogger("tensorboard").setLevel(logging.WARNING)  # not a line per event file read
    events = EventAccumulator(str(job_dir), size_guidance={"scalars": 0})  # 0: keep every point
    events.Reload()
    return events


def loss_curve(job_dir: Path, events=None) -> tuple[list[int], list[float]]:
    """The train/loss points the job's TensorBoard events hold (none without the tensorboard logger)."""
    events = events or job_events(job_dir)
    if events is None or "train/loss" not in events.Tags()["scalars"]:
        return [], []
    points = events.Scalars("train/loss")
    return [p.step + 1 for p in points], [p.value for p in points]  # Lightning counts from 0: step 1 is the first


def write_summary(root: Path, planned: list[list[str]] | None = None) -> tuple[str, list[dict], list[str]]:
    """Writes summary.csv, summary.md and (with matplotlib) loss_curves.png into root. `planned`: every job's
    overrides, in order, of a sweep a signal stopped: a job of them that has no dir gets a `not started` row.

    Returns the Markdown table, the rows and the names of the files written.
    """
    dirs = job_dirs(root)
    rows = [summarize(d, stopped=planned is not None) for d in dirs]
    started = {_job_number(d.name) for d in dirs}
    waiting = [(str(n), job) for n, job in enumerate(planned or []) if str(n) not in started]
    rows += [{"job": n, "overrides": " ".join(job), "status": NOT_STARTED, "reason": "", "steps": None,
              "wall_time_s": None} for n, job in waiting]
    metric_names = sorted({k for row in rows for k in row} - {"job", "overrides", "status", "reason", "steps",
                                                                "wall_time_s"})
    table_csv = io.StringIO(newline="")
    writer = csv.DictWriter(table_csv, ["job", "overrides", "status", "reason", "steps", "wall_time_s", *metric_names])
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(root / "summary.csv", table_csv.getvalue())
    shown = [{**row, "overrides": " ".join(shown_overrides(d, _typed_overrides(d)))} for d, row in zip(dirs, rows)]
    shown += rows[len(dirs):]
    table = markdown_table(shown, [m for m in TABLE_METRICS if m in metric_names])
    write_atomic(root / "summary.md", table + "\n")
    for row in rows:
        if row["reason"].startswith(UNREADABLE):
            print(f"note: job {_job_number(row['job'])} counts as failed: {row['reason']}", file=sys.stderr)
    files = list(TABLES)
    events = [job_events(d) for d in dirs]
    with_events = any(e is not None for e in events)  # none under logger=csv, none or []: the tables are all
    if with_events and plot_loss_curves(root, dirs, rows[:len(dirs)], events):
        files.append(PLOT)
    return table, rows, files


def why_no_plot(root: Path) -> str:
    """The line that says why loss_curves.png was not drawn."""
    return NO_PLOT if any(map(has_events, job_dirs(root))) else NO_CURVES


def varied(jobs: list[list[str]]) -> list[str]:
    """The override keys whose values are not the same in every job (each job's overrides as typed; a job
    without the key counts as a value of its own): the plot's title, and what each curve's label shows."""
    values = [dict(o.partition("=")[::2] for o in overrides) for overrides in jobs]
    keys = dict.fromkeys(k for v in values for k in v)
    return [k for k in keys if len({v.get(k) for v in values}) > 1]


def markdown_table(rows: list[dict], metrics: list[str]) -> str:
    columns = ["job", "overrides", "status", "steps", "wall time (s)", *metrics]  # no metric: no empty column
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for row in rows:
        status = f"{row['status']}: {row['reason']}" if row["reason"] else row["status"]
        cells = [_job_number(row["job"]), f"`{row['overrides']}`" if row["overrides"] else "(defaults)", status,
                 row["steps"] if row["steps"] is not None else "",
                 row["wall_time_s"] if row["wall_time_s"] is not None else "",
                 *(f"{row[m]:.4g}" if m in row else "" for m in metrics)]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _job_number(name: str) -> str:
    """`3_model=manual,...` -> `3`: the table's overrides column already says the rest."""
    return m.group() if (m := re.match(r"\d+(?=_)", name)) else name


def plot_loss_curves(root: Path, dirs: list[Path], rows: list[dict], events: list) -> bool:
    """Every job's train/loss on a log scale, labelled by the overrides that set it apart, titled
    by what the sweep varied. Jobs with the same curve (the primer's point: its nets compute the
    same function) stay visible: each has its own dashes and markers, the markers staggered.

    Returns False, drawing nothing, where matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError:
        return False

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    typed = [_typed_overrides(d) for d in dirs]  # a value may hold a space: `+note='a b'`
    keys = varied(typed)
    # fixed margins that fit the title, the axis labels and log-scale ticks: tight_layout would measure
    # every text by drawing the figure an extra time
    fig, ax = plt.subplots(figsize=(8, 5), gridspec_kw=dict(left=0.1, right=0.97, bottom=0.1, top=0.93))
    for i, (job_dir, row, job_events) in enumerate(zip(dirs, rows, events)):
        steps, values = loss_curve(job_dir, job_events)
        finite = [(s, v) for s, v in zip(steps, values) if math.isfinite(v) and v > 0]
        if finite:
            label = " ".join(o for o in typed[i] if o.partition("=")[0] in keys) or row["overrides"] or "defaults"
            failed = " (failed)" if row["status"] == "failed" else ""
            every = max(len(finite) // 8, 1)  # ~8 markers a curve, shifted per job so they do not cover each other
            ax.plot(*zip(*finite), linestyle=LINESTYLES[i % len(LINESTYLES)], marker=MARKERS[i % len(MARKERS)],
                    markevery=(i * every // max(len(rows), 1), every), markersize=6, fillstyle="none",
                    label=f"{_job_number(row['job'])}: {label}{failed}")
    what = f"{len(rows)} jobs varying {', '.join(keys)}" if keys else rows[0]["overrides"] or "defaults"
    ax.set(yscale="log", xlabel="step", ylabel="train/loss (summed squared error)", title=f"train/loss: {what}")
    if ax.lines:
        ax.legend(fontsize=8)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    write_atomic(root / PLOT, png.getvalue())
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m primer.sweeps.report", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="a run dir or a sweep dir (outputs/multirun/<sweep>)")
    root = parser.parse_args(argv).dir
    with exits.command_line():
        if not root.is_dir() or not job_dirs(root):
            raise BadConfig(f"{root}: not a run or sweep dir; give a dir that holds .hydra/ or job dirs with .hydra/")
        table, _, files = write_summary(root)
    print(table)
    print(f"\nwrote {', '.join(files)} in {root}")
    if PLOT not in files:
        print(why_no_plot(root))


if __name__ == "__main__":
    main()
