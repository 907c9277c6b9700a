"""MLflow and Weights & Biases beside TensorBoard (conf/logger/mlflow.yaml, wandb.yaml).

What each holds is read back through the tracker's own reader (MLflow's tracking client; `wandb leet inspect`,
W&B's reader of an offline run's .wandb file) and compared with what primer wrote: metrics.json, and the
HPARAMS keys of primer.cli.build.run_hparams. A sweep or search is one MLflow experiment and one W&B group,
one tracker run per job. A tracker whose package is missing stops in one line before any dir is made.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from primer.cli.build import run_hparams
from primer.cli.train import fit_run
from tests.conftest import QUIET, TINY, read_checkpoint, run_cli, same_weights

def store(cwd: Path) -> str:
    """The MLflow store of commands started in cwd (conf/logger/mlflow.yaml), by its absolute path: mlflow keeps
    one store per URI for the process, and a relative one would stay the first test's."""
    return f"sqlite:///{cwd / 'outputs' / 'mlflow.db'}"


def mlflow_runs(cwd: Path, experiment: str) -> list:
    """The runs of an experiment of the store, oldest first."""
    from mlflow import MlflowClient

    client = MlflowClient(store(cwd))
    found = client.get_experiment_by_name(experiment)
    assert found is not None, [e.name for e in client.search_experiments()]
    return client.search_runs([found.experiment_id], order_by=["attributes.start_time ASC"])


def wandb_run(run_dir: Path) -> dict:
    """The offline W&B run in a run dir, as W&B reads it: {"summary": state and last values, "records": [...]}."""
    [offline] = (run_dir / "wandb").glob("offline-run-*")
    read = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(offline)]
    summary = subprocess.run([*read[:-1], "--summary", str(offline)], capture_output=True, text=True, check=True)
    records = subprocess.run(read, capture_output=True, text=True, check=True)
    return {"summary": json.loads(summary.stdout),
            "records": [json.loads(line) for line in records.stdout.splitlines()]}


def logged_steps(records: list[dict], key: str) -> list[int]:
    """The trainer steps (Lightning's, from 0) at which `key` was logged to W&B."""
    items = [r["history"]["item"] for r in records if r["type"] == "history"]
    return [item["trainer/global_step"] for item in items if key in item]


def metrics_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.parametrize("logger, package", [("mlflow", "mlflow"), ("wandb", "wandb"),
                                             ("[tensorboard,mlflow]", "mlflow"), ("[tensorboard,wandb]", "wandb")])
@pytest.mark.parametrize("sweep", [False, True], ids=["run", "sweep"])
def test_a_tracker_whose_package_is_missing_stops_in_one_line_before_any_dir(cli, tmp_path, monkeypatch, logger,
                                                                              package, sweep):
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed: `import mlflow` fails
    code, out, err = cli(*(["-m", "seed=0,1"] if sweep else []), f"logger={logger}", *TINY, *QUIET)
    name = {"mlflow": "MLFlowLogger", "wandb": "WandbLogger"}[package]
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (f'error: logger.{package}: {name} needs the {package} package, which is not installed; '
                           f'pip install -e ".[{package}]", or choose logger=tensorboard, logger=csv or logger=none')
    assert not (tmp_path / "outputs").exists() and "sweep into" not in out


@pytest.mark.parametrize("uri, artifacts", [(None, "outputs/mlartifacts"), ("http://127.0.0.1:5000", None)])
def test_a_server_is_one_override_and_keeps_the_artifacts_itself(make_config, uri, artifacts):
    cfg = make_config("logger=mlflow", *([f"logger.mlflow.tracking_uri={uri}"] if uri else []))
    assert cfg.logger.mlflow.artifact_location == artifacts  # a local path would mean nothing to a server


NO_TRACKING = """
from primer.run.trackers import MLflowRun, WandbRun
MLflowRun(tracking_uri="sqlite:///outputs/mlflow.db")
WandbRun(offline=True)
from mlflow.telemetry.client import get_telemetry_client
import wandb.env
print(get_telemetry_client(), wandb.env.error_reporting_enabled())
"""


@pytest.mark.slow  # a subprocess that imports Lightning, mlflow and wandb: seconds
def test_the_trackers_start_nothing_that_reaches_the_network(tmp_path, start_store):
    """mlflow starts its usage telemetry at import, outside CI and tests (whose variables the command runs without)."""
    start_store(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_CURRENT_TEST")}
    shown = subprocess.run([sys.executable, "-c", NO_TRACKING], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert shown.stdout.split() == ["None", "False"]


@pytest.mark.slow  # trains in this process
def test_mlflow_holds_the_runs_params_step_metrics_final_metrics_and_checkpoint(make_config, tmp_path, monkeypatch,
                                                                             start_store):
    start_store(tmp_path)
    monkeypatch.chdir(tmp_path)
    cfg = make_config(*TINY, *QUIET, "logger=[tensorboard,mlflow]")
    fit_run(cfg)
    run_dir, hparams = tmp_path / "run", run_hparams(cfg)

    [run] = mlflow_runs(tmp_path, "primer")  # a run outside a sweep
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.tags["primer.run_dir"] == str(run_dir)
    assert {k: run.data.params[k] for k in hparams} == {k: str(v) for k, v in hparams.items()}
    assert run.data.params["logger"] == "[tensorboard,mlflow]"  # as typed: Hydra records no choice for a list
    assert {k: run.data.metrics[k] for k in metrics_json(run_dir)} == metrics_json(run_dir)

    from mlflow import MlflowClient

    client = MlflowClient(store(tmp_path))
    # the first step, every trainer.log_every_n_steps=2, the last (Lightning counts steps from 0)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [0, 1, 3, 5]
    ckpt = client.download_artifacts(run.info.run_id, "final/final.ckpt", str(tmp_path))
    assert same_weights(read_checkpoint(ckpt)["state_dict"],
                        read_checkpoint(run_dir / "checkpoints" / "final.ckpt")["state_dict"])
    assert list(run_dir.glob("events.out.tfevents.*"))  # TensorBoard beside it
    assert (tmp_path / "outputs" / "mlartifacts").is_dir() and not (tmp_path / "mlruns").exists()


@pytest.mark.slow  # trains in this process
def test_wandb_offline_run_holds_the_runs_config_step_metrics_and_final_metrics(make_config, tmp_path):
    cfg = make_config(*TINY, *QUIET, "logger=wandb")
    fit_run(cfg)
    run_dir, hparams = tmp_path / "run", run_hparams(cfg)

    found = wandb_run(run_dir)
    summary = found["summary"]
    assert summary["state"] == "finished" and summary["name"] == "run" and summary["project"] == "primer"
    assert {k: summary["config"][k] for k in hparams} == hparams
    assert {k: summary["summary"][k] for k in metrics_json(run_dir)} == metrics_json(run_dir)
    assert logged_steps(found["records"], "train/loss") == [0, 1, 3, 5]
    assert not list(run_dir.glob("events.out.tfevents.*"))  # W&B alone


@pytest.mark.slow  # trains in this process
def test_each_run_writes_to_the_store_under_the_dir_it_starts_in(make_config, tmp_path, monkeypatch, start_store):
    """Two runs in one process (a notebook) from two dirs: mlflow would keep the first dir's store for both."""
    for name in ("a", "b"):
        start_store(tmp_path / name)
        monkeypatch.chdir(tmp_path / name)
        fit_run(make_config(*TINY, *QUIET, "logger=mlflow", subdir=f"{name}/run"))
    assert [[r.info.run_name for r in mlflow_runs(tmp_path / name, "primer")] for name in ("a", "b")] == [["run"]] * 2


@pytest.mark.slow  # a sweep of parallel jobs
def test_a_parallel_sweep_is_one_mlflow_experiment_with_a_run_per_job(tmp_path):
    """The jobs start together, and the first to arrive creates the store and the experiment for all."""
    done = run_cli("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "optimizer.lr=1e-4,1e-3", "logger=mlflow",
                   *TINY, *QUIET, "hydra.sweep.dir=sweep", cwd=tmp_path)  # joblib's workers start in its dir
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = sorted(d for d in (tmp_path / "sweep").iterdir() if (d / "metrics.json").is_file())
    runs = mlflow_runs(tmp_path, "sweep")  # the experiment is named by the sweep's dir
    assert sorted(r.info.run_name for r in runs) == [job.name for job in jobs] and len(jobs) == 2
    for run in runs:
        job = tmp_path / "sweep" / run.info.run_name
        assert {k: run.data.metrics[k] for k in metrics_json(job)} == metrics_json(job)
        assert run.data.tags["primer.run_dir"] == str(job)


@pytest.mark.slow  # a search in this process
def test_a_search_is_one_mlflow_experiment_and_one_wandb_group_with_a_run_per_trial(cli, tmp_path, start_store):
    """Its trials run one after another in one process: each is a run of its own in both trackers."""
    start_store(tmp_path)
    code, out, err = cli("-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2", "logger=[mlflow,wandb]",
                         *TINY, *QUIET, "hydra.sweep.dir=search")
    assert code == 0, err[-3000:]
    jobs = sorted(d for d in (tmp_path / "search").iterdir() if (d / "metrics.json").is_file())
    assert len(jobs) == 2

    runs = mlflow_runs(tmp_path, "search")
    assert sorted(r.info.run_name for r in runs) == [job.name for job in jobs]
    for run in runs:
        job = tmp_path / "search" / run.info.run_name
        assert {k: run.data.metrics[k] for k in metrics_json(job)} == metrics_json(job)

    for job in jobs:
        found = wandb_run(job)
        [started] = [r["run"] for r in found["records"] if r["type"] == "run"]
        assert started["run_group"] == "search" and found["summary"]["name"] == job.name
        assert {k: found["summary"]["summary"][k] for k in metrics_json(job)} == metrics_json(job)
