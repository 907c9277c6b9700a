"""What a sweep prints (primer.sweeps.sweep_console): its first line, the model summary once, one line per
job as it ends, the summary; every job's own output in its log; no colour codes in any file."""

import json
import re
import subprocess

import pytest
import yaml

from primer import exits
from primer.sweeps.report import job_dirs
from primer.sweeps.sweep_console import job_line
from tests.conftest import TINY, start_cli

SWEEPS = {  # progress lines and the model summary on, to see where they go
    "grid": ["optimizer.lr=1e-4,2e-4,10", *TINY],
    "optuna": ["hparams_search=optuna", "hydra.sweeper.n_trials=2", *TINY],
}
ESCAPE = "\x1b["


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """Both sweeps at once; name -> (stdout, stderr, sweep dir)."""
    cwd = tmp_path_factory.mktemp("sweeps")
    procs = {}
    for name, args in SWEEPS.items():
        (cwd / name).mkdir()
        procs[name] = start_cli("-m", *args, cwd=cwd / name, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == (exits.SWEEP_FAILED if name == "grid" else 0), err[-3000:]
        [sweep_dir] = (cwd / name / "outputs" / "multirun").iterdir()
        results[name] = out, err, sweep_dir
    return results


@pytest.mark.slow
def test_sweep_prints_its_dir_the_model_summary_once_a_line_per_job_and_the_summary(sweeps):
    out, err, sweep_dir = sweeps["grid"]
    lines = out.splitlines()
    assert lines[0] == (f"sweep into outputs/multirun/{sweep_dir.name}: a line per job as it ends; "
                        "each job's full log is <job dir>/train.log")
    first_job = next(i for i, line in enumerate(lines) if line.startswith("#0 "))
    summary = lines[first_job + 3:]
    markdown = (sweep_dir / "summary.md").read_text().splitlines()
    heading = f"Sweep summary (summary.csv, summary.md, loss_curves.png in outputs/multirun/{sweep_dir.name}):"
    assert summary == ["", heading, "", *markdown, "", f"tensorboard --logdir outputs/multirun/{sweep_dir.name}"]

    model_summary = "\n".join(lines[1:first_job])
    assert out.count("Total params") == 1
    assert model_summary.strip() in (job_dirs(sweep_dir)[0] / "train.log").read_text()

    for num, (line, job) in enumerate(zip(lines[first_job:first_job + 3], job_dirs(sweep_dir))):
        overrides = " ".join(yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()))
        assert line.startswith(f"#{num} {overrides}  ")
        if num < 2:
            metrics = json.loads((job / "metrics.json").read_text())
            wall = round(json.loads((job / "run.json").read_text())["wall_time_s"], 2)  # as summary.csv has it
            assert line == (f"#{num} {overrides}  train/loss {metrics['train/loss']:.4g}  val/loss "
                            f"{metrics['val/loss']:.4g}  val/r2 {metrics['val/r2']:.4g}  ({wall:.1f} s)")
        else:
            assert line == f"#2 {overrides}  failed: {(job / 'failure.txt').read_text().strip()}"
            assert "diverged" in line
    assert err.splitlines() == [f"error: 1 of 3 jobs failed; see outputs/multirun/{sweep_dir.name}/summary.md"]


@pytest.mark.slow
def test_each_job_keeps_its_full_output_in_its_log(sweeps):
    _, _, sweep_dir = sweeps["grid"]
    for job in job_dirs(sweep_dir):
        log = (job / "train.log").read_text()
        assert "Seed set to 0" in log and "step 1/6  train/loss" in log  # Lightning's lines and the progress
        if (job / "failure.txt").exists():
            assert "this job failed; the sweep goes on: training diverged" in log
        else:
            assert "done: 6 steps in " in log and "Total params" in log


@pytest.mark.slow
@pytest.mark.parametrize("name", SWEEPS)
def test_no_colour_codes_in_any_file_or_stream_of_a_sweep(sweeps, name):
    out, err, sweep_dir = sweeps[name]
    assert ESCAPE not in out and ESCAPE not in err
    texts = 0
    for path in sweep_dir.rglob("*"):
        try:
            text = path.read_text() if path.is_file() else ""
        except UnicodeDecodeError:
            continue  # checkpoints, events, the plot
        texts += 1
        assert ESCAPE not in text, path
    assert texts > 10
    if name == "optuna":
        assert re.search(r"^\[I [\d-]+ [\d:,]+\] A new study created", err, re.MULTILINE)  # Optuna's line, plain


def job_dir_with(tmp_path, overrides, **files):
    job = tmp_path / "3_job"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    for name, text in files.items():
        (job / name.replace("_", ".")).write_text(text)
    return job


def test_a_job_line_is_its_row_of_the_summary(tmp_path):
    metrics = json.dumps({"train/loss": 2.4784e-06, "val/loss": 2.41e-06, "val/r2": 1.0, "val/mse": 3.7e-09})
    job = job_dir_with(tmp_path, ["seed=3"], metrics_json=metrics, run_json=json.dumps({"wall_time_s": 1.234}))
    assert job_line(3, job, "ignored") == "#3 seed=3  train/loss 2.478e-06  val/loss 2.41e-06  val/r2 1  (1.2 s)"


def test_a_failed_job_line_says_why(tmp_path):
    job = job_dir_with(tmp_path, ["optimizer.lr=10"], failure_txt="Diverged: train/loss is inf at step 3\n")
    assert job_line(3, job, "ignored") == "#3 optimizer.lr=10  failed: Diverged: train/loss is inf at step 3"


def test_a_job_without_hydra_dir_says_where_its_results_are(tmp_path):
    """hydra.output_subdir=null: no .hydra/overrides.yaml to read the row from."""
    assert job_line(0, tmp_path, "seed=0") == f"#0 seed=0  ended; what it wrote is in {tmp_path}"
