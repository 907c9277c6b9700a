"""Who starts a DDP job's processes (ranks): Lightning, a cluster's launcher (SLURM, torchrun, ...), or submitit."""

import os


def nodes_are_started() -> bool:
    """Whether a cluster environment Lightning detects, NODE_RANK (set by hand) or submitit starts the other nodes."""
    from lightning.fabric.plugins import environments as found

    if "NODE_RANK" in os.environ or "SUBMITIT_EXECUTOR" in os.environ:
        return True
    return any(env.detect() for env in (found.TorchElasticEnvironment, found.SLURMEnvironment,
                                        found.LSFEnvironment, found.MPIEnvironment))


def starts_in_the_job(strategy) -> bool:
    """Whether Lightning starts the processes from inside the job (spawn, fork), not by re-running the command."""
    from lightning.pytorch.strategies import StrategyRegistry

    if not isinstance(strategy, str) or strategy not in StrategyRegistry:
        return False
    return StrategyRegistry[strategy]["init_params"].get("start_method") in ("spawn", "fork", "forkserver")


def use_submitit_tasks_as_ranks() -> None:
    """Each task of a local submitit job is one DDP rank: exports MASTER_ADDR, RANK, ... for Lightning to read."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "local":
        return
    import submitit

    if submitit.JobEnvironment().num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
