"""A sweep run again into its dir skips each job that finished there with the same config (its
`finished.json`), goes on from the checkpoint of one a signal stopped, and runs any other afresh."""

import json
import logging
import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from primer.config import task_config
from primer.run.files import EVENT_FILES, INTERRUPTED_FILE, RUN_RECORDS
from primer.writes import write_atomic

RECORD = "finished.json"  # the job's resolved config and its result: .hydra/ is rewritten before the task starts
log = logging.getLogger(__name__)


def interrupted_checkpoint(cfg: DictConfig) -> str | None:
    """The checkpoint a signal left in this job's dir, unless the command line chose a ckpt_path."""
    job_dir = Path(cfg.paths.output_dir)
    ckpt = job_dir / "checkpoints" / "interrupted.ckpt"  # primer.run.guards.SaveOnInterrupt's
    if cfg.get("ckpt_path") is None and (job_dir / INTERRUPTED_FILE).is_file() and ckpt.is_file():
        return str(ckpt)
    return None


def finished_result(cfg: DictConfig, resumes: bool = False) -> float | None:
    """The value this job returned when it finished in this dir with this config; None: run it (its
    earlier attempt's records and events removed, unless it `resumes` from its interrupted checkpoint)."""
    job_dir = Path(cfg.paths.output_dir)
    record = job_dir / RECORD
    stored = _read(record) if record.is_file() and (job_dir / "metrics.json").is_file() else None
    if stored is not None and stored["config"] == _config(cfg):
        log.info(f"skipped {job_dir.name}: finished earlier with this config; its results are kept")
        return math.nan if stored["result"] is None else stored["result"]
    if not resumes:  # a resumed job's records come back if it stops again before a step, its curve goes on
        for stale in (RECORD, *RUN_RECORDS, *job_dir.glob(EVENT_FILES)):  # else the summary shows both attempts
            (job_dir / stale).unlink(missing_ok=True)
    return None


def _read(record: Path) -> dict | None:
    try:
        stored = json.loads(record.read_text())
        if isinstance(stored, dict) and isinstance(stored.get("result", 0.0), (int, float, type(None))) \
                and "config" in stored:
            return stored
        problem = "not a finished job's record (config, result)"
    except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        problem = f"{type(error).__name__}: {error}"
    log.warning(f"{record}: cannot read it ({problem}); the job runs again")
    return None


def record_finished(cfg: DictConfig, result: float) -> None:
    from lightning.pytorch.utilities import rank_zero_only  # set by the Trainer; train() has imported lightning

    if rank_zero_only.rank == 0:  # a job of DDP tasks: one record, as one metrics.json
        record = {"config": _config(cfg), "result": result if math.isfinite(result) else None}
        write_atomic(Path(cfg.paths.output_dir, RECORD), json.dumps(record, indent=2) + "\n")


def _config(cfg: DictConfig) -> dict:
    """The resolved config as JSON gives it back (so a stored and a fresh one compare equal)."""
    return json.loads(json.dumps(OmegaConf.to_container(task_config(cfg), resolve=True)))
