"""Where a resume comes from: `ckpt_path` read as Lightning's `Trainer.fit(ckpt_path=...)` reads it.

- A path is a path from the dir the command was started in, also under `hydra.job.chdir=true`,
  which moves the task into its run dir before `fit` opens the file.
- `last`: the newest `last*.ckpt` in the run's checkpoint dir (ModelCheckpoint's `save_last=true`),
  or primer's `interrupted.ckpt` there, which plays the part of Lightning's OnExceptionCheckpoint; where
  there is none, training starts from scratch with a note, as Lightning does.
- `hpc`: the newest `hpc_ckpt_N.ckpt` in `trainer.default_root_dir` (saved by Lightning on a SLURM requeue).
- `best` means the best checkpoint of an earlier `fit` in the same process; a new run has none.
The file found is checked as any `ckpt_path` is (primer.checks.checkpoint_files.check_resume) before training.
"""

import copy
import logging
import os
import re
from pathlib import Path

from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from primer.config import launch_dir
from primer.exits import BadConfig

INTERRUPTED = "interrupted.ckpt"  # primer.run.guards.SaveOnInterrupt's file


def checkpoint_to_resume(cfg: DictConfig) -> str | None:
    """The file a run of `cfg` resumes from, as an absolute path; None: it starts from scratch."""
    from primer.checks.validation import value

    typed = value(cfg, "ckpt_path")
    if typed is None:
        return None
    typed = str(typed)
    if typed == "best":
        raise BadConfig("ckpt_path=best: Lightning's 'best' is the best checkpoint of an earlier fit in the same "
                        "process, and a new run has none; give the checkpoint's path, or ckpt_path=last")
    if typed == "last":
        found = [p for d in checkpoint_dirs(cfg) if d.is_dir() for p in d.iterdir() if _is_last(p)]
        return str(max(found, key=lambda p: p.stat().st_mtime)) if found else None
    if typed == "hpc":
        root = _run_values(cfg, "trainer.default_root_dir")[0]
        if root is None:
            return None  # a sweep job's dir, not made yet: looked at when the job starts (resume_from)
        numbered = [p for p in Path(root).glob("hpc_ckpt_*.ckpt") if re.fullmatch(r"hpc_ckpt_\d+", p.stem)]
        if not numbered:
            raise BadConfig(f"ckpt_path=hpc: no hpc_ckpt_N.ckpt in {root} (Lightning saves them there when SLURM "
                            "requeues a job); give the checkpoint's path")
        return str(max(numbered, key=lambda p: int(p.stem.rpartition("_")[2])))
    return os.path.join(_launch_dir(cfg), typed)  # an absolute path stays as it is


def resume_from(cfg: DictConfig) -> str | None:
    """checkpoint_to_resume, for Trainer.fit. A keyword is checked again here: a sweep job's dir, where
    `last` looks, is known only now."""
    from primer.checks.checkpoint_files import check_resume

    path, typed = checkpoint_to_resume(cfg), str(cfg.get("ckpt_path"))
    if typed in ("last", "hpc"):
        if path is None:  # last, where there is none
            dirs = " or ".join(str(d) for d in checkpoint_dirs(cfg))
            logging.getLogger(__name__).warning(
                f"ckpt_path=last: no last*.ckpt or {INTERRUPTED} in {dirs}; training starts from scratch, as "
                "Lightning does (+callbacks.model_checkpoint.save_last=true keeps a last.ckpt)")
        else:
            check_resume(cfg)
    return path


def resumes_into(cfg: DictConfig, run_dir: str | Path) -> bool:
    """Whether the run resumes from a checkpoint inside its own dir: its curve and log then go on there."""
    path = checkpoint_to_resume(cfg)
    return path is not None and Path(path).resolve().is_relative_to(Path(run_dir).resolve())


def shown(cfg: DictConfig, path: str) -> str:
    """`ckpt_path=` as the user typed it, with the file a keyword stands for."""
    typed = str(cfg.ckpt_path)
    return f"ckpt_path={typed}" if typed not in ("last", "hpc") else f"ckpt_path={typed} ({path})"


def checkpoint_dirs(cfg: DictConfig) -> list[Path]:
    """Where this run's checkpoints go: the ModelCheckpoint's dirpath, and <default_root_dir>/checkpoints
    (SaveOnInterrupt's, and Lightning's own ModelCheckpoint's without a dirpath)."""
    dirpath, root = _run_values(cfg, "callbacks.model_checkpoint.dirpath", "trainer.default_root_dir")
    dirs = [Path(d) for d in (dirpath, root and f"{root}/checkpoints") if d]
    return list(dict.fromkeys(d if d.is_absolute() else Path(_launch_dir(cfg), d) for d in dirs))


def _launch_dir(cfg: DictConfig) -> str:
    """The config Hydra composed knows where the command started (the check before a run, where HydraConfig
    is not set yet); the task's config does not, and asks HydraConfig."""
    return OmegaConf.select(cfg, "hydra.runtime.cwd", default=None) or launch_dir()


def _is_last(path: Path) -> bool:
    """Lightning's test for a `save_last` file (ModelCheckpoint._find_last_checkpoints), or interrupted.ckpt."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    named_last = re.match(rf"^{ModelCheckpoint.CHECKPOINT_NAME_LAST}(-(\d+))?", path.stem)
    return (path.suffix == ModelCheckpoint.FILE_EXTENSION and bool(named_last)) or path.name == INTERRUPTED


def _run_values(cfg: DictConfig, *keys: str) -> list:
    """The values at `keys` for this run. Before Hydra has made the run dir (the check before a run), the
    run dir is hydra.run.dir, where it will be made; a sweep job's is not known yet (None)."""
    from primer.checks.validation import value

    if value(cfg, "paths.output_dir") is None and OmegaConf.select(cfg, "hydra.run.dir", default=None):
        if OmegaConf.select(cfg, "hydra.mode", default=None) == RunMode.MULTIRUN:
            return [None] * len(keys)
        cfg = copy.deepcopy(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = os.path.join(_launch_dir(cfg), str(cfg.hydra.run.dir))
    return [value(cfg, key) for key in keys]
