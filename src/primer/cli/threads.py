"""The cores a job was given, and torch's threads set to match: jobs side by side that each start a thread
per core of the machine spin against each other, and the thread count decides the floating-point bits, so
run.json records it (primer.run.results)."""

import contextlib
import os
from collections.abc import Iterator, Mapping

from omegaconf import DictConfig, OmegaConf


def cores_given(launcher: DictConfig | None, environ: Mapping[str, str] = os.environ,
                affinity: int | None = None) -> tuple[int, str]:
    """The cores this job may use and where that number comes from, first match wins."""
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
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return affinity or cores, "all cores of this process"


@contextlib.contextmanager
def use_cores_given(launcher: DictConfig | None) -> Iterator[dict[str, int | str]]:
    """Sets torch's threads and OMP_NUM_THREADS (DDP ranks read it) to the cores given; yields what run.json records."""
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
