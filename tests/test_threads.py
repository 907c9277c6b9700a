"""Each job takes the cores its launcher gave it (primer.threads): the rule, and torch set to it."""

import os

import joblib
import pytest
import torch
from omegaconf import OmegaConf

from primer.threads import cores_given, use_cores_given

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
