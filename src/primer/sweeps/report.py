"""Sweep summary: one row per job, a table (CSV, Markdown) and every job's loss curve (PNG).

    python -m primer.sweeps.report outputs/multirun/<sweep>    # rebuild the summary of any sweep or run dir

Written at the end of every multirun by the Hydra callback SweepSummary. Everything is read
from what each job dir holds:
`.hydra/overrides.yaml` (label), `metrics.json` (final metrics), `run.json` (steps, and the wall
time the run measured itself; never file times, which move when e.g. primer.eval writes into the
run dir), `failure.txt` (why a job failed): the table and the exit code need no logger and no
callback. The TensorBoard events, where a job wrote them, give the loss curves. Heavy imports (tensorboard, matplotlib) happen inside the functions that need them.
The plot needs matplotlib, from the `sweeps` extra (`pip install -e ".[sweeps]"`); without it the
summary is the two tables and a line that says how to get the plot.
"""

import argparse
import csv
import json
import logging
import math
import re
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from primer import exits
from primer.run.dashboard import FIRST_METRICS as TABLE_METRICS
from primer.run.experiment import logdir_of, write_experiment
from primer.run.files import EVENT_FILES, FAILURE_FILE, PRUNED_FILE
from primer.exits import BadConfig, SweepFailed, first_line
from primer.sweeps.searched import shown_overrides

TABLES, PLOT = ("summary.csv", "summary.md"), "loss_curves.png"
NO_PLOT = f"{PLOT} not drawn: it needs matplotlib; pip install -e '.[sweeps]' (or pip install matplotlib)"
NO_CURVES = f"{PLOT} not drawn: no job wrote its loss curve to TensorBoard (logger=tensorboard does)"
LINESTYLES, MARKERS = ("-", "--", ":", "-."), ("o", "s", "^", "v", "D", "x")


def record_failure(job_dir: str | Path, error: BaseException) -> None:
    """Leaves the one-line reason a job failed in its dir, for the summary."""
    reason = f"{type(error).__name__}: {first_line(error)}"
    (Path(job_dir) / FAILURE_FILE).write_text(reason + "\n")


class SweepSummary(Callback):
    """Hydra callback: records jobs that raised, and summarizes the sweep when it ends."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs) -> None:
        job_dir = Path(config.hydra.runtime.output_dir)
        if job_return.status == JobStatus.FAILED and not (job_dir / FAILURE_FILE).exists():
            record_failure(job_dir, job_return._return_value)  # the exception; .return_value would raise it

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table, rows, files = write_summary(sweep_dir)
        for logdir in (sweep_dir, logdir_of(sweep_dir)):  # HPARAMS' columns, for this sweep and for outputs/
            if logdir is not None:
                write_experiment(logdir)
        print(f"\nSweep summary ({', '.join(files)} in {sweep_dir}):\n\n{table}")
        if PLOT not in files:
            print(why_no_plot(sweep_dir))
        if any(map(has_events, job_dirs(sweep_dir))):
            print(f"\ntensorboard --logdir {sweep_dir}")
        failed = sum(row["status"] == "failed" for row in rows)
        if failed:  # every job ran; the exit code still tells a script that some did not finish
            exits.sweep_failed(SweepFailed(f"{failed} of {len(rows)} jobs failed; see {sweep_dir / 'summary.md'}"))


def job_dirs(root: Path) -> list[Path]:
    """The run dir itself, or a sweep's job dirs in job order."""
    if (root / ".hydra").is_dir():
        return [root]
    jobs = [d for d in root.iterdir() if (d / ".hydra").is_dir()]
    return sorted(jobs, key=lambda d: (int(m.group()) if (m := re.match(r"\d+", d.name)) else math.inf, d.name))


def summarize(job_dir: Path) -> dict:
    """One job's row: overrides, status and reason, steps, wall time and every final metric."""
    metrics_path = job_dir / "metrics.json"
    metrics = {k: float(v) for k, v in json.loads(metrics_path.read_text()).items()} if metrics_path.exists() else {}
    status, reason = "ok", ""
    if (job_dir / FAILURE_FILE).exists():
        status, reason = "failed", (job_dir / FAILURE_FILE).read_text().strip()
    elif (job_dir / PRUNED_FILE).exists():
        status, reason = "pruned", (job_dir / PRUNED_FILE).read_text().strip()
    elif not metrics:
        status, reason = "failed", "no metrics.json: the job did not finish"
    elif not math.isfinite(metrics.get("train/loss", 0.0)):
        status, reason = "failed", f"diverged: train/loss={metrics['train/loss']}"
    run = _run_json(job_dir)
    return {
        "job": job_dir.name,
        "overrides": " ".join(_typed_overrides(job_dir)),
        "status": status,
        "reason": reason,
        "steps": run.get("steps"),
        "wall_time_s": round(run["wall_time_s"], 2) if run else None,
        **metrics,
    }


def _typed_overrides(job_dir: Path) -> list[str]:
    """The job's overrides as typed: `${...}` in them is text, never resolved (a sweep dir is data)."""
    return [str(o) for o in OmegaConf.to_container(OmegaConf.load(job_dir / ".hydra" / "overrides.yaml"))]


def _run_json(job_dir: Path) -> dict:
    """What the run measured about itself (primer.run.results.RunSummary): its steps and wall time,
    whatever its logger and callbacks; {} if it stopped before training."""
    run = job_dir / "run.json"
    return json.loads(run.read_text()) if run.exists() else {}


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


def write_summary(root: Path) -> tuple[str, list[dict], list[str]]:
    """Writes summary.csv, summary.md and (with matplotlib) loss_curves.png into root.

    Returns the Markdown table, the rows and the names of the files written.
    """
    dirs = job_dirs(root)
    rows = [summarize(d) for d in dirs]
    metric_names = sorted({k for row in rows for k in row} - {"job", "overrides", "status", "reason", "steps",
                                                                "wall_time_s"})
    with open(root / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["job", "overrides", "status", "reason", "steps", "wall_time_s", *metric_names])
        writer.writeheader()
        writer.writerows(rows)
    shown = [{**row, "overrides": " ".join(shown_overrides(d, _typed_overrides(d)))} for d, row in zip(dirs, rows)]
    table = markdown_table(shown, [m for m in TABLE_METRICS if m in metric_names])
    (root / "summary.md").write_text(table + "\n")
    files = list(TABLES)
    events = [job_events(d) for d in dirs]
    with_events = any(e is not None for e in events)  # none under logger=csv, none or []: the tables are all
    if with_events and plot_loss_curves(root, dirs, rows, events):
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
        status = f"{row['status']}: {row['reason']}" if row["status"] in ("failed", "pruned") else "ok"
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
    fig.savefig(root / PLOT, dpi=100)
    plt.close(fig)
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
