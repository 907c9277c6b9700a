"""Which launcher can start which DDP job. Lightning starts a job's processes by re-running the command line
(strategy=ddp: no sweep of the basic launcher can), or from inside the job (ddp_spawn); submitit starts one
task per process itself. Combinations that cannot run, and nodes nothing starts, stop here, before any run."""

from omegaconf import DictConfig, OmegaConf

from primer.exits import BadConfig
from primer.run.ranks import nodes_are_started, starts_in_the_job


def processes(cfg: DictConfig) -> int | None:
    """The number of training processes of a job: devices × nodes; None where Lightning picks (auto, -1)."""
    devices = cfg.trainer.devices
    if OmegaConf.is_list(devices):
        devices = len(devices)
    elif cfg.trainer.accelerator == "cpu" and devices == "auto":
        devices = 1  # Lightning runs one CPU process
    return devices * cfg.trainer.num_nodes if isinstance(devices, int) and devices > 0 else None


def check_scale_out(cfg: DictConfig, multirun: bool) -> None:
    """Raises BadConfig for a job its launcher cannot start, or whose batch cannot be split."""
    n, nodes = processes(cfg), cfg.trainer.num_nodes
    for key in ("data.batch_size", "data.val_size", "data.test_size"):
        if n is not None and (rows := OmegaConf.select(cfg, key, default=None)) is not None and rows < n:
            raise BadConfig(f"{key}={rows}: each of the {n} DDP processes needs at least one row; use {key}>={n}")
    launcher = str(OmegaConf.select(cfg, "hydra.launcher._target_", default=""))
    if isinstance(nodes, int) and nodes > 1 and not (multirun and "submitit" in launcher) and not nodes_are_started():
        raise BadConfig(
            f"trainer.num_nodes={nodes}: nothing starts the other nodes here, so this run would wait for them forever; "
            f"run it under SLURM (srun, or -m hydra/launcher=slurm hydra.launcher.nodes={nodes}) or torchrun, or set "
            "MASTER_ADDR, MASTER_PORT and NODE_RANK on every node as Lightning documents; on one machine use "
            "trainer.devices")
    basic = launcher.endswith("BasicLauncher")
    if multirun and "submitit" in launcher:
        tasks = cfg.hydra.launcher.tasks_per_node
        if n is None or (tasks, cfg.hydra.launcher.nodes) != (n // nodes, nodes):
            raise BadConfig(
                f"hydra.launcher.tasks_per_node={tasks}: a submitit job starts one task per training process; "
                f"set hydra.launcher.tasks_per_node=<trainer.devices> ({cfg.trainer.devices}) and "
                f"hydra.launcher.nodes=<trainer.num_nodes> ({nodes}), with trainer.devices a number")
    elif multirun and (basic or "joblib" in launcher) and n != 1 \
            and not (basic and starts_in_the_job(cfg.trainer.strategy)):
        raise BadConfig(
            f"trainer.devices={cfg.trainer.devices}: a sweep of the {'basic' if basic else 'joblib'} launcher runs its "
            f"jobs in {'this one process' if basic else 'joblib' + chr(39) + 's worker processes'}, where Lightning "
            "cannot start each job's DDP processes by re-running the command line (trainer.strategy=ddp); sweep DDP "
            "jobs with hydra/launcher=local or hydra/launcher=slurm (hydra.launcher.tasks_per_node=<trainer.devices>)"
            + (", or with trainer.strategy=ddp_spawn" if basic else "") + ", or run them one at a time")
