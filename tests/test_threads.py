"""Each job takes the cores its launcher gave it (primer.cli.threads): the rule, and torch set to it."""

import json
import os
import subprocess
from pathlib import Path

import joblib
import pytest
import torch
from omegaconf import OmegaConf

from primer.sweeps.report import job_dirs
from primer.cli.threads import cores_given, use_cores_given
from primer.cli.train import fit_run
from tests.conftest import QUIET, read_checkpoint, same_weights, start_cli

BASIC = OmegaConf.create({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"})
LOCAL = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
SLURM = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


def launcher(target, **values):
    return OmegaConf.create({"_target_": target, **values})


def test_slurm_allocation_wins_over_the_config_and_omp_num_threads():
    env = {"SLURM_CPUS_PER_TASK": "3", "OMP_NUM_THREADS": "8"}
    assert cores_given(launcher(SLURM, cpus_per_task=4), env, affinity=16) == (3, "SLURM_CPUS_PER_TASK")


def test_submitit_job_takes_its_cpus_per_task():
    assert cores_given(launcher(LOCAL, cpus_per_task=1), {}, affinity=16) == (1, "hydra.launcher.cpus_per_task")
    assert cores_given(launcher(SLURM, cpus_per_task=4), {}, affinity=16) == (4, "hydra.launcher.cpus_per_task")


def test_submitit_job_without_cpus_per_task_takes_the_process_cores():
    assert cores_given(launcher(LOCAL, cpus_per_task=None), {}, affinity=6) == (6, "all cores of this process")


@pytest.mark.parametrize("n_jobs, workers", [(-1, joblib.cpu_count()), (1, 1), (2, 2)])
def test_joblib_worker_takes_an_equal_share_of_the_cores(n_jobs, workers):
    cores, source = cores_given(launcher(JOBLIB, n_jobs=n_jobs), {"OMP_NUM_THREADS": "8"}, affinity=16)
    assert cores == max(joblib.cpu_count() // workers, 1)
    assert source == f"{joblib.cpu_count()} cores / {workers} joblib workers (hydra.launcher.n_jobs)"


def test_lone_run_takes_an_explicit_omp_num_threads_else_every_core_it_may_run_on():
    assert cores_given(BASIC, {"OMP_NUM_THREADS": "3"}, affinity=16) == (3, "OMP_NUM_THREADS")
    for unusable in ("", "0", "two"):
        assert cores_given(BASIC, {"OMP_NUM_THREADS": unusable}, affinity=16) == (16, "all cores of this process")
    assert cores_given(None, {}, affinity=5) == (5, "all cores of this process")
    assert cores_given(BASIC, {})[0] == len(os.sched_getaffinity(0))


def test_torch_and_child_processes_get_the_cores_given_until_the_job_ends(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    before = torch.get_num_threads()
    with use_cores_given(launcher(LOCAL, cpus_per_task=1)) as recorded:
        assert recorded == {"cores_given": 1, "cores_from": "hydra.launcher.cpus_per_task"}
        assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    assert torch.get_num_threads() == before and os.environ["OMP_NUM_THREADS"] == "7"


@pytest.mark.slow
def test_same_recorded_inputs_give_the_same_bits_alone_under_joblib_and_under_local(make_config, tmp_path,
                                                                                       monkeypatch):
    """The default sizes, where the thread count changes the bits (2 threads differ from 1 by step 100):
    a joblib worker's share and a local job's cpus_per_task are 1 core, so is the lone run's OMP_NUM_THREADS."""
    run = ["trainer.max_steps=100", "logger=none", *QUIET]
    sweeps = {}
    for launcher in ("joblib", "local"):  # one job each, both at once
        (tmp_path / launcher).mkdir()
        sweeps[launcher] = start_cli("-m", f"hydra/launcher={launcher}", *run, cwd=tmp_path / launcher,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    alone = make_config(*run)
    fit_run(alone)

    expected = {"cores_given": 1, "intra_op_threads": 1, "seed": 0, "device": "cpu", "torch": torch.__version__}
    runs = {"alone": (Path(alone.paths.output_dir), "OMP_NUM_THREADS")}
    for launcher, proc in sweeps.items():
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        [job] = job_dirs(next((tmp_path / launcher / "outputs" / "multirun").iterdir()))
        cores = joblib.cpu_count()
        runs[launcher] = job, ("hydra.launcher.cpus_per_task" if launcher == "local" else
                               f"{cores} cores / {cores} joblib workers (hydra.launcher.n_jobs)")
    losses = set()
    for name, (run_dir, source) in runs.items():
        recorded = json.loads((run_dir / "run.json").read_text())
        assert recorded | expected == recorded and recorded["cores_from"] == source, name
        losses.add(json.loads((run_dir / "metrics.json").read_text())["train/loss"])
    assert len(losses) == 1, losses
    final = [read_checkpoint(run_dir / "checkpoints" / "final.ckpt")["state_dict"] for run_dir, _ in runs.values()]
    assert same_weights(final[0], final[1]) and same_weights(final[0], final[2])
