"""Shared helpers: compose the real conf/ with overrides, run tiny real trainings into tmp_path,
start the real command line, and read back what a run saved."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

# Each pytest-xdist worker is a job given its share of the cores (docs/configuration.md: jobs side by side that
# each start a thread per core spin against each other), set before torch starts its threads; the runs and
# commands a test starts take it from OMP_NUM_THREADS, as a lone run does (primer.cli.threads).
if "PYTEST_XDIST_WORKER_COUNT" in os.environ and "OMP_NUM_THREADS" not in os.environ:
    workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ["OMP_NUM_THREADS"] = str(max(len(os.sched_getaffinity(0)) // workers, 1))

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from primer.config import CONFIG_DIR, CONFIG_NAME

# Small enough that a training takes well under a second on a 2-core CPU.
TINY = ["trainer.max_steps=6", "trainer.log_every_n_steps=2", "data.input_dim=8", "model.hidden_dim=4"]
# No progress bar or model summary: a run's output holds only what the test reads.
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
MODELS = ["two_layer", "custom_relu", "sequential", "autograd", "raw_custom_relu", "manual"]
# the tutorial's lr for each net, which its conf/model/*.yaml sets
PRIMER_LR = {"two_layer": 1e-4, "custom_relu": 1e-4, "sequential": 1e-4, "autograd": 1e-6, "raw_custom_relu": 1e-6,
             "manual": 1e-6}

REPO_ROOT = Path(__file__).resolve().parents[1]


def compose_config(output_dir, overrides=()) -> DictConfig:
    """The config `python -m primer.train OVERRIDES` would run, writing into output_dir."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=[f"hydra.run.dir={output_dir}", *overrides], return_hydra_config=True)
    HydraConfig().set_config(cfg)  # what @hydra.main does before calling the task
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


@pytest.fixture
def make_config(tmp_path):
    def make(*overrides, subdir="run"):
        return compose_config(tmp_path / subdir, overrides)

    return make


def cli_env() -> dict[str, str]:
    """The environment of a command-line run: without HYDRA_FULL_ERROR, whose tracebacks would replace
    the one-line errors under test, and with the repo root importable, for tests/callbacks.py."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_cli(*args, cwd, module="primer.train", timeout=300) -> subprocess.CompletedProcess:
    """Runs `python -m primer.train ARGS` (or another primer command) in cwd, made if missing, to its end.
    The exit code is the caller's to check."""
    Path(cwd).mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


def start_cli(*args, cwd, **popen_kwargs) -> subprocess.Popen:
    """Starts `python -m primer.train ARGS` in cwd and returns at once: for runs that run together or get a signal."""
    return subprocess.Popen([sys.executable, "-m", "primer.train", *args], cwd=cwd, env=cli_env(), text=True,
                            **popen_kwargs)


def read_checkpoint(path) -> dict:
    """What a run saved at `path`, loaded as a resume loads it: tensors and plain containers only."""
    return torch.load(path, map_location="cpu", weights_only=True)


def same_weights(a: dict, b: dict) -> bool:
    """Two state dicts hold the same tensors under the same names, bit for bit."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Runs `python -m primer.train ARGS` (or another entry point's main) in tmp_path, in this process:
    run(*args) -> (exit code, stdout, stderr)."""
    from primer import exits
    import primer.train

    monkeypatch.chdir(tmp_path)
    for name in ("HYDRA_FULL_ERROR", exits.USER_FULL_ERROR, "PL_GLOBAL_SEED"):
        monkeypatch.delenv(name, raising=False)

    def run(*args, main=primer.train.main, prog="primer.train"):
        monkeypatch.setattr(sys, "argv", [prog, *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as stop:
            code = stop.code or 0
        out, err = capsys.readouterr()
        return code, out, err

    return run


def wait_for_file(path, process: subprocess.Popen, timeout: float = 120) -> None:
    """Waits until `path` exists (an event the process signals by writing it); fails if the process ends first."""
    import time

    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if process.poll() is not None:
            pytest.fail(f"the process ended ({process.returncode}) before writing {path}: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow store's file (conf/logger/mlflow.yaml) as mlflow makes it before any run: making its tables takes
    seconds, so once per test process (test_a_parallel_sweep_is_one_mlflow_experiment_with_a_run_per_job makes its
    own)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def start_store(empty_store):
    """Lays an empty store where commands started in cwd find it."""
    def lay(cwd: Path) -> None:
        (cwd / "outputs").mkdir(parents=True)
        shutil.copyfile(empty_store, cwd / "outputs" / "mlflow.db")

    return lay
