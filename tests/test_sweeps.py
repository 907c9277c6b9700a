"""Real multiruns of the real config: a grid with diverging jobs, a joblib sweep with a job that
raises, a 3-trial Optuna search (all three started together), and the summaries they leave."""

import csv
import json
import math
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from matplotlib import image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from primer import exits
from primer.sweeps import report
from primer.sweeps.report import job_dirs, shown_overrides
from tests.conftest import QUIET, REPO_ROOT, TINY, run_cli, start_cli

SWEEPS = {  # name: the multirun's arguments
    "grid": ["model=two_layer,custom_relu", "optimizer.lr=1e-4,10", *TINY],
    "joblib": ["hydra/launcher=joblib", "optimizer.lr=1e-4,10", *TINY],
    # the search draws model.hidden_dim itself; only the data and the run are kept tiny
    "optuna": ["hparams_search=optuna", "hydra.sweeper.n_trials=3", *TINY[:3]],
}


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """Starts the three sweeps at once in one dir; returns each one's stdout and sweep dir."""
    cwd = tmp_path_factory.mktemp("sweeps")
    procs = {
        name: start_cli("-m", *args, *QUIET, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name, args in SWEEPS.items()
    }
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        failed, jobs = {"grid": (2, 4), "joblib": (1, 2)}.get(name, (None, None))
        if failed:  # every job ran; the exit code and the last line say that some failed
            assert proc.returncode == exits.SWEEP_FAILED, err[-3000:]
            assert err.rstrip().splitlines()[-1].startswith(f"error: {failed} of {jobs} jobs failed; see ")
        else:  # optuna: a drawn lr may diverge too
            assert proc.returncode in (0, exits.SWEEP_FAILED), err[-3000:]
        results[name] = out
    dirs = list((cwd / "outputs" / "multirun").iterdir())
    by_name = {name: next(d for d in dirs if _sweep_name(d) == name) for name in SWEEPS}
    return {name: (results[name], by_name[name]) for name in SWEEPS}, dirs


def _sweep_name(sweep_dir):
    first_job = job_dirs(sweep_dir)[0]
    overrides = yaml.safe_load((first_job / ".hydra" / "hydra.yaml").read_text())["hydra"]["overrides"]
    task = " ".join(overrides["task"] + overrides["hydra"])
    return "optuna" if "hparams_search=optuna" in task else "joblib" if "joblib" in task else "grid"


def summary_rows(sweep_dir):
    with open(sweep_dir / "summary.csv") as f:
        return list(csv.DictReader(f))


def check_summary_matches_every_job(sweep_dir, stdout):
    """The CSV and Markdown rows hold each job's overrides and metrics.json; the PNG is an image."""
    rows, jobs = summary_rows(sweep_dir), job_dirs(sweep_dir)
    markdown = (sweep_dir / "summary.md").read_text()
    assert markdown.strip() in stdout  # printed at the end of the sweep
    assert len(rows) == len(jobs) == len(markdown.strip().splitlines()) - 2
    for row, job in zip(rows, jobs):
        assert row["job"] == job.name
        typed = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert row["overrides"] == " ".join(typed)  # every override, every digit
        assert f"`{' '.join(shown_overrides(job))}`" in markdown  # a search's: what it drew, rounded
        if (job / "metrics.json").exists():
            for name, value in json.loads((job / "metrics.json").read_text()).items():
                assert float(row[name]) == pytest.approx(float(value), nan_ok=True)
        if row["status"] == "ok":
            assert int(row["steps"]) == 6 and float(row["wall_time_s"]) > 0
            assert f"{float(row['train/loss']):.4g}" in markdown
    assert (sweep_dir / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = image.imread(sweep_dir / "loss_curves.png").shape
    assert (width, height) == (800, 500)
    return rows


@pytest.mark.slow
def test_sweeps_started_together_keep_their_own_dirs(sweeps):
    by_name, dirs = sweeps
    assert len(dirs) == 3
    assert [len(job_dirs(by_name[name][1])) for name in SWEEPS] == [4, 2, 3]


SWEEP_DIR_OF_THIS_PROCESS = """
from hydra import compose, initialize_config_dir
from primer.config import CONFIG_DIR, CONFIG_NAME
with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
    print(compose(CONFIG_NAME, return_hydra_config=True).hydra.sweep.dir)
"""


def test_sweep_dirs_made_in_the_same_second_differ():
    """Two commands started together name their sweep dirs apart (the process id), whatever the clock says."""
    started = [subprocess.Popen([sys.executable, "-c", SWEEP_DIR_OF_THIS_PROCESS], stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    first, second = (p.communicate(timeout=120)[0].strip() for p in started)
    assert first != second and first.startswith("outputs/multirun/") and second.startswith("outputs/multirun/")


@pytest.mark.slow
def test_grid_sweep_summary_marks_diverged_jobs_failed(sweeps):
    stdout, sweep_dir = sweeps[0]["grid"]
    rows = check_summary_matches_every_job(sweep_dir, stdout)
    for row in rows:
        diverging = "optimizer.lr=10" in row["overrides"].split()
        assert row["status"] == ("failed" if diverging else "ok")
        # the message of a run that stops itself at its first non-finite loss (primer.run.guards)
        assert bool(re.search(r"train/loss is (nan|inf) at step \d+ of 6", row["reason"])) == diverging
    assert [r["overrides"].split()[:2] for r in rows] == [
        ["model=two_layer", "optimizer.lr=0.0001"], ["model=two_layer", "optimizer.lr=10"],
        ["model=custom_relu", "optimizer.lr=0.0001"], ["model=custom_relu", "optimizer.lr=10"]]


@pytest.mark.slow
def test_job_names_hold_the_swept_values_under_joblib_and_optuna(sweeps):
    """The sweep's keys are found once, in the launching process, and reach joblib's worker processes and
    Optuna's trials through Hydra's copy of the resolver cache (primer.config._swept_keys)."""
    _, joblib_dir = sweeps[0]["joblib"]
    assert joblib_dir.name.endswith("_lr") and [j.name for j in job_dirs(joblib_dir)] == ["0_lr0.0001", "1_lr10"]
    _, optuna_dir = sweeps[0]["optuna"]
    assert optuna_dir.name.endswith("_optimizer_lr_hidden_dim")
    for job in job_dirs(optuna_dir):
        values = dict(o.split("=", 1) for o in yaml.safe_load((job / ".hydra/overrides.yaml").read_text()))
        assert job.name.startswith(f"{job.name.split('_')[0]}_{values['optimizer']}_lr")
        assert job.name.endswith(f"_hidden_dim{values['model.hidden_dim']}") and "input_dim" not in job.name


@pytest.mark.slow
def test_each_job_is_a_tensorboard_run_named_by_the_values_its_sweep_varies(sweeps):
    _, sweep_dir = sweeps[0]["grid"]
    assert sweep_dir.name.endswith("_model_lr")
    names = ["0_two_layer_lr0.0001", "1_two_layer_lr10", "2_custom_relu_lr0.0001", "3_custom_relu_lr10"]
    assert [job.name for job in job_dirs(sweep_dir)] == names  # the fixed sizes are in .hydra/overrides.yaml
    for job in job_dirs(sweep_dir):
        events = EventAccumulator(str(job))
        events.Reload()
        if (job / report.FAILURE_FILE).exists():  # diverged at step 3: its curve until then, no final metrics
            assert events.Scalars("train/loss") and not (job / "metrics.json").exists()
            continue
        metrics = json.loads((job / "metrics.json").read_text())
        for tag, value in metrics.items():
            logged = events.Scalars(tag)[-1].value
            assert logged == pytest.approx(float(value), nan_ok=True)
        assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")


@pytest.mark.slow
def test_report_rebuilds_the_same_summary_from_the_job_dirs(sweeps, capsys):
    _, sweep_dir = sweeps[0]["grid"]
    before = {name: (sweep_dir / name).read_text() for name in ("summary.csv", "summary.md")}
    for name in ("summary.csv", "summary.md", "loss_curves.png"):
        (sweep_dir / name).unlink()
    report.main([str(sweep_dir)])  # what `python -m primer.sweeps.report DIR` runs
    assert {name: (sweep_dir / name).read_text() for name in before} == before
    assert before["summary.md"].strip() in capsys.readouterr().out
    assert (sweep_dir / "loss_curves.png").is_file()


@pytest.mark.slow
def test_report_without_matplotlib_writes_the_tables_and_says_how_to_get_the_plot(sweeps, tmp_path, monkeypatch,
                                                                                   capsys):
    _, sweep_dir = sweeps[0]["grid"]
    for job in job_dirs(sweep_dir):
        shutil.copytree(job, tmp_path / job.name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # an install without the `sweeps` extra: import fails
    report.main([str(tmp_path)])
    files = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert files == ["summary.csv", "summary.md"]  # no event file outside a run: no empty TensorBoard run
    assert summary_rows(tmp_path) == summary_rows(sweep_dir)
    out = capsys.readouterr().out
    assert f"Sweep summary (summary.csv, summary.md in {tmp_path}):\n" in out and f"\n{report.NO_PLOT}\n" in out
    assert "pip install -e '.[sweeps]'" in report.NO_PLOT


@pytest.mark.slow
def test_report_of_a_single_run_dir_has_one_row(sweeps):
    _, sweep_dir = sweeps[0]["joblib"]
    run_dir = job_dirs(sweep_dir)[0]
    report.summarize_sweep(run_dir, at_sweep_end=False)
    (row,) = summary_rows(run_dir)
    assert row["job"] == run_dir.name and row["status"] == "ok" and row["steps"] == "6"


@pytest.mark.slow
def test_report_shows_a_jobs_overrides_as_typed_and_resolves_nothing_in_them(tmp_path, monkeypatch):
    monkeypatch.setenv("PRIMER_SECRET", "the secret")
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra/overrides.yaml").write_text("- seed=${oc.env:PRIMER_SECRET}\n")
    assert report.summarize(tmp_path)["overrides"] == "seed=${oc.env:PRIMER_SECRET}"


def test_the_summary_lists_the_job_dirs_and_looks_for_their_events_once(tmp_path, monkeypatch, capsys):
    from tests.test_environment_faults import fake_job

    sweep = tmp_path / "sweep"
    jobs = [fake_job(sweep, "0_optimizer.lr=0.1").name, fake_job(sweep, "1_optimizer.lr=0.2").name]
    listed, looked = [], []
    monkeypatch.setattr(report, "job_dirs", lambda root, real=report.job_dirs: listed.append(root) or real(root))
    monkeypatch.setattr(report, "has_events", lambda job, real=report.has_events: looked.append(job.name) or real(job))
    report.main([str(sweep)])  # `python -m primer.sweeps.report DIR`: its check and the summary share one listing
    assert listed == [sweep] and looked == jobs
    table = (sweep / "summary.md").read_text()
    printed = f"\nSweep summary (summary.csv, summary.md in {sweep}):\n\n{table}{report.NO_CURVES}\n"
    assert capsys.readouterr().out == printed


def test_the_loss_plot_leaves_the_process_matplotlib_backend_alone(tmp_path, monkeypatch):
    """A notebook that rebuilds a summary keeps its own backend: the plot is drawn without pyplot."""
    import matplotlib
    from torch.utils.tensorboard import SummaryWriter

    from tests.test_environment_faults import fake_job

    for job, lr in (("0_optimizer.lr=0.1", 0.1), ("1_optimizer.lr=0.2", 0.2)):
        with SummaryWriter(fake_job(tmp_path, job, overrides=f"- optimizer.lr={lr}\n")) as writer:
            for step in range(3):
                writer.add_scalar("train/loss", 10 * lr / (step + 1), step)
    monkeypatch.setitem(matplotlib.rcParams, "backend", "pdf")
    report.summarize_sweep(tmp_path, at_sweep_end=False)
    assert matplotlib.rcParams["backend"] == "pdf"
    assert image.imread(tmp_path / "loss_curves.png").shape[:2] == (500, 800)


def test_a_summary_of_jobs_without_metrics_has_as_many_separators_as_columns():
    table = report.markdown_table([{"job": "0_x=1", "overrides": "x=1", "status": "failed", "reason": "r",
                                    "steps": None, "wall_time_s": None}], metrics=[])
    header, separator, row = table.splitlines()
    assert header == "| job | overrides | status | steps | wall time (s) |"
    assert header.count("|") == separator.count("|") == row.count("|") == 6


def test_a_trials_line_rounds_the_numbers_it_drew_and_keeps_the_rest():
    from primer.sweeps.report import rounded

    assert rounded("optimizer.lr=0.0006431172050131992") == "optimizer.lr=0.0006431"
    assert [rounded(o) for o in ("model.hidden_dim=39", "optimizer=adam", "x=1e-05")] == \
        ["model.hidden_dim=39", "optimizer=adam", "x=1e-05"]


@pytest.mark.parametrize("module", ["primer.sweeps.report", "primer.report"])  # the old name keeps working
def test_report_of_a_dir_without_runs_says_so_in_one_line(tmp_path, module):
    result = run_cli(str(tmp_path), module=module, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {tmp_path}: not a run or sweep dir") and result.stderr.count("\n") == 1


def test_every_command_has_a_console_script_beside_its_module():
    import tomllib

    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"primer-train": "primer.train:main", "primer-eval": "primer.eval:main",
                       "primer-report": "primer.report:main"}


@pytest.mark.slow
def test_joblib_sweep_records_a_diverging_job_and_runs_the_others(sweeps):
    stdout, sweep_dir = sweeps[0]["joblib"]
    ok, failed = check_summary_matches_every_job(sweep_dir, stdout)
    assert ok["status"] == "ok" and math.isfinite(float(ok["val/loss"]))
    assert failed["status"] == "failed"
    assert failed["reason"].startswith("Diverged: training diverged: train/loss is ")
    assert "at step 3 of 6; try a smaller optimizer.lr (this run: 10; the tutorial trains model=" in failed["reason"]


@pytest.mark.slow
def test_optuna_search_minimizes_the_final_val_loss_over_its_trials(sweeps):
    stdout, sweep_dir = sweeps[0]["optuna"]
    rows = check_summary_matches_every_job(sweep_dir, stdout)
    assert len(rows) == 3
    searched = [dict(o.split("=") for o in row["overrides"].split()) for row in rows]
    assert all({"optimizer", "optimizer.lr", "model.hidden_dim"} <= s.keys() for s in searched)
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    finished = [float(r["val/loss"]) for r in rows if r["status"] == "ok"]
    assert best["best_value"] == pytest.approx(min(finished))


def test_varied_names_the_override_keys_not_the_same_in_every_job():
    """The plot's title and each curve's label: what sets the jobs apart, in the order they name it."""
    jobs = [["model=two_layer", "optimizer.lr=1e-4", "seed=1"],
            ["model=manual", "optimizer.lr=1e-4"],
            ["model=manual", "optimizer.lr=1e-4", "seed=1"]]
    assert report.varied(jobs) == ["model", "seed"]  # a job without seed= differs from one with it
    assert report.varied(jobs[:1]) == []
    assert report.varied([["+note='a b'", "seed=1"], ["+note='a c'", "seed=1"]]) == ["+note"]  # one override each
