"""submitit's tasks as DDP ranks."""

import os


def use_submitit_tasks_as_ranks() -> None:
    """In a local submitit job of several tasks, exports torch.distributed's variables (MASTER_ADDR, RANK, ...),
    which Lightning reads, so that each task is one DDP rank instead of a launcher (on SLURM it reads SLURM's)."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "local":
        return
    import submitit

    if submitit.JobEnvironment().num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
