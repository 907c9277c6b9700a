"""Scaling out: which launcher can run which DDP job, and submitit's tasks as DDP ranks.

A DDP job of N processes is started either by Lightning, which relaunches this script N-1
times (one plain run: `python -m primer.train trainer=ddp_cpu trainer.devices=2`), or by a
cluster launcher that starts one task per process itself (submitit on SLURM or locally).
Lightning's relaunch repeats the command line, so it cannot run inside a sweep of the basic
launcher; those combinations are stopped here, before anything runs. Nothing here imports torch.
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
    if not multirun:
        return
    launcher = str(OmegaConf.select(cfg, "hydra.launcher._target_", default=""))
    if "submitit" in launcher:
        tasks, nodes = cfg.hydra.launcher.tasks_per_node, cfg.hydra.launcher.nodes
        if n is None or (tasks, nodes) != (n // cfg.trainer.num_nodes, cfg.trainer.num_nodes):
            raise BadConfig(
                f"hydra.launcher.tasks_per_node={tasks}: a submitit job starts one task per training process; "
                f"set hydra.launcher.tasks_per_node=<trainer.devices> ({cfg.trainer.devices}) and "
                f"hydra.launcher.nodes=<trainer.num_nodes> ({cfg.trainer.num_nodes}), with trainer.devices a number"
            )
    elif (launcher.endswith("BasicLauncher") or "joblib" in launcher) and n != 1:
        where = "this one process" if launcher.endswith("BasicLauncher") else "joblib's worker processes"
        raise BadConfig(
            f"trainer.devices={cfg.trainer.devices}: a sweep of the {'basic' if 'Basic' in launcher else 'joblib'} "
            f"launcher runs its jobs in {where}, where Lightning cannot start each job's DDP processes; sweep DDP "
            "jobs with hydra/launcher=local or hydra/launcher=slurm (hydra.launcher.tasks_per_node=<trainer.devices>), "
            "or run them one at a time"
        )


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
