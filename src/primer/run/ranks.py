"""Who starts a DDP job's processes (ranks): Lightning, from the command line or inside the job; a cluster's
launcher (SLURM, torchrun, ...); or submitit, whose tasks become the ranks."""

import os


def nodes_are_started() -> bool:
    """Whether something outside this process starts the other nodes: a cluster environment Lightning's Trainer
    detects, NODE_RANK (set by hand on each node), or a submitit job (use_submitit_tasks_as_ranks)."""
    from lightning.fabric.plugins import environments as found

    if "NODE_RANK" in os.environ or "SUBMITIT_EXECUTOR" in os.environ:
        return True
    return any(env.detect() for env in (found.TorchElasticEnvironment, found.SLURMEnvironment,
                                        found.LSFEnvironment, found.MPIEnvironment))


def starts_in_the_job(strategy) -> bool:
    """Whether Lightning starts a DDP job's processes from inside the job (spawn, fork), as its registry says,
    rather than by re-running the command line (ddp)."""
    from lightning.pytorch.strategies import StrategyRegistry

    if not isinstance(strategy, str) or strategy not in StrategyRegistry:
        return False
    return StrategyRegistry[strategy]["init_params"].get("start_method") in ("spawn", "fork", "forkserver")


def use_submitit_tasks_as_ranks() -> None:
    """In a local submitit job of several tasks, exports torch.distributed's variables (MASTER_ADDR, RANK, ...),
    which Lightning reads, so that each task is one DDP rank instead of a launcher (on SLURM it reads SLURM's)."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "local":
        return
    import submitit

    if submitit.JobEnvironment().num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
