"""Scaling out: which launcher can run which DDP job, and submitit's tasks as DDP ranks.

A DDP job of N processes is started either by Lightning, which relaunches this script N-1
times (one plain run: `python -m primer.train trainer=ddp_cpu trainer.devices=2`), or by a
cluster launcher that starts one task per process itself (submitit on SLURM or locally).
Lightning's relaunch (strategy=ddp) repeats the command line, so it cannot run inside a sweep of the
basic launcher; ddp_spawn starts the processes from the job and can. Combinations that cannot run, and
several nodes with nothing to start them, are stopped here, before anything runs. Lightning (and torch)
is imported only to ask it about those.
"""

import os

from omegaconf import DictConfig, OmegaConf

from primer.exits import BadConfig


def processes(cfg: DictConfig) -> int | None:
    """The number of training processes of a job: devices × nodes; None where Lightning picks (auto, -1)."""
    devices = cfg.trainer.devices
    if OmegaConf.is_list(devices):
        count = len(devices)
    elif isinstance(devices, int) and devices > 0:
        count = devices
    elif cfg.trainer.accelerator == "cpu" and devices == "auto":
        count = 1  # Lightning runs one CPU process
    else:
        return None
    return count * cfg.trainer.num_nodes


def check_scale_out(cfg: DictConfig, multirun: bool) -> None:
    """Raises BadConfig for a job its launcher cannot start, or whose batch cannot be split."""
    n = processes(cfg)
    for key in ("data.batch_size", "data.val_size", "data.test_size"):
        rows = OmegaConf.select(cfg, key, default=None)
        if n is not None and rows is not None and rows < n:
            raise BadConfig(f"{key}={rows}: each of the {n} DDP processes needs at least one row; use {key}>={n}")
    launcher = str(OmegaConf.select(cfg, "hydra.launcher._target_", default=""))
    nodes = cfg.trainer.num_nodes
    if isinstance(nodes, int) and nodes > 1 and not (multirun and "submitit" in launcher) and not nodes_are_started():
        raise BadConfig(
            f"trainer.num_nodes={nodes}: nothing starts the other nodes here, so this run would wait for them forever; "
            f"run it under SLURM (srun, or -m hydra/launcher=slurm hydra.launcher.nodes={nodes}) or torchrun, or set "
            "MASTER_ADDR, MASTER_PORT and NODE_RANK on every node as Lightning documents; on one machine use "
            "trainer.devices"
        )
    if not multirun:
        return
    if "submitit" in launcher:
        tasks, nodes = cfg.hydra.launcher.tasks_per_node, cfg.hydra.launcher.nodes
        if n is None or (tasks, nodes) != (n // cfg.trainer.num_nodes, cfg.trainer.num_nodes):
            raise BadConfig(
                f"hydra.launcher.tasks_per_node={tasks}: a submitit job starts one task per training process; "
                f"set hydra.launcher.tasks_per_node=<trainer.devices> ({cfg.trainer.devices}) and "
                f"hydra.launcher.nodes=<trainer.num_nodes> ({cfg.trainer.num_nodes}), with trainer.devices a number"
            )
    elif launcher.endswith("BasicLauncher") and n != 1 and starts_processes_in_the_job(cfg.trainer.strategy):
        return  # ddp_spawn, ddp_fork: Lightning starts the job's processes from the job itself
    elif (launcher.endswith("BasicLauncher") or "joblib" in launcher) and n != 1:
        where = "this one process" if launcher.endswith("BasicLauncher") else "joblib's worker processes"
        raise BadConfig(
            f"trainer.devices={cfg.trainer.devices}: a sweep of the {'basic' if 'Basic' in launcher else 'joblib'} "
            f"launcher runs its jobs in {where}, where Lightning cannot start each job's DDP processes by re-running "
            "the command line (trainer.strategy=ddp); sweep DDP jobs with hydra/launcher=local or hydra/launcher=slurm "
            "(hydra.launcher.tasks_per_node=<trainer.devices>)"
            + (", or with trainer.strategy=ddp_spawn" if "Basic" in launcher else "") + ", or run them one at a time"
        )


def nodes_are_started() -> bool:
    """Whether something outside this process starts the other nodes: one of the cluster environments
    Lightning's Trainer detects (torchrun, SLURM, LSF, MPI), the variables its default environment reads
    (NODE_RANK, set by hand on each node), or a submitit job (use_submitit_tasks_as_ranks)."""
    from lightning.fabric.plugins.environments import (
        LSFEnvironment,
        MPIEnvironment,
        SLURMEnvironment,
        TorchElasticEnvironment,
    )

    if "NODE_RANK" in os.environ or "SUBMITIT_EXECUTOR" in os.environ:
        return True
    return any(env.detect() for env in (TorchElasticEnvironment, SLURMEnvironment, LSFEnvironment, MPIEnvironment))


def starts_processes_in_the_job(strategy) -> bool:
    """Whether Lightning starts a DDP job's processes from inside the job (spawn, fork), as its registry says,
    rather than by re-running the command line (ddp): the former can run in a sweep's own process."""
    from lightning.pytorch.strategies import StrategyRegistry

    if not isinstance(strategy, str) or strategy not in StrategyRegistry:
        return False
    return StrategyRegistry[strategy]["init_params"].get("start_method") in ("spawn", "fork", "forkserver")


def use_submitit_tasks_as_ranks() -> None:
    """In a submitit job of several tasks, makes each task one DDP rank instead of a launcher.

    Lightning starts processes itself unless the environment says they exist. On SLURM it reads
    SLURM's variables; submitit's local executor sets only its own, so they are exported here as
    torch.distributed's (MASTER_ADDR, MASTER_PORT, RANK, LOCAL_RANK, WORLD_SIZE), which Lightning reads.
    """
    if os.environ.get("SUBMITIT_EXECUTOR") != "local":
        return
    import submitit

    if submitit.JobEnvironment().num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
