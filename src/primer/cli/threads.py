"""How many cores a job was given, and torch's intra-op threads set to match.

Jobs that run side by side (a joblib or submitit sweep, SLURM jobs on one node) each start one
OpenMP thread per core of the machine by default; those threads spin against each other and a job
runs many times slower. The thread count also decides the floating-point bits: a sum split over
2 threads rounds differently from one over 1. So each job takes the cores its launcher gave it,
and run.json records them (primer.run.results), which makes a run repeatable from what it recorded.
"""

import contextlib
import os
from collections.abc import Iterator, Mapping

from omegaconf import DictConfig, OmegaConf


def cores_given(launcher: DictConfig | None, environ: Mapping[str, str] = os.environ,
                affinity: int | None = None) -> tuple[int, str]:
    """The cores this job may use and where that number comes from, first match wins:
    SLURM's allocation, the submitit launcher's `cpus_per_task`, an equal share of the cores
    among joblib's workers, an explicit OMP_NUM_THREADS, else every core this process may run on."""
    target = str(OmegaConf.select(launcher, "_target_", default="")) if launcher is not None else ""
    if environ.get("SLURM_CPUS_PER_TASK", "").isdigit():
        return int(environ["SLURM_CPUS_PER_TASK"]), "SLURM_CPUS_PER_TASK"
    if "submitit" in target and launcher.get("cpus_per_task"):
        return int(launcher.cpus_per_task), "hydra.launcher.cpus_per_task"
    if "joblib" in target:
        import joblib

        # loky's own share (what it puts in its workers' OMP_NUM_THREADS); n_jobs=-1: a worker per core
        cores, workers = joblib.cpu_count(), joblib.effective_n_jobs(launcher.get("n_jobs", -1))
        return max(cores // workers, 1), f"{cores} cores / {workers} joblib workers (hydra.launcher.n_jobs)"
    if environ.get("OMP_NUM_THREADS", "").isdigit() and int(environ["OMP_NUM_THREADS"]) > 0:
        return int(environ["OMP_NUM_THREADS"]), "OMP_NUM_THREADS"
    return affinity or _affinity(), "all cores of this process"


def _affinity() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def use_cores_given(launcher: DictConfig | None) -> Iterator[dict[str, int | str]]:
    """Sets torch's intra-op threads, and OMP_NUM_THREADS for the processes the job starts (DDP
    ranks), to the cores given; yields what run.json records. Both are restored on exit, so that
    the next job of a sweep run in this process decides for itself."""
    import torch

    cores, source = cores_given(launcher)
    threads, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(cores)
    os.environ["OMP_NUM_THREADS"] = str(cores)
    try:
        yield {"cores_given": cores, "cores_from": source}
    finally:
        torch.set_num_threads(threads)
        if env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env
