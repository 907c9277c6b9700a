"""A sweep run again into its dir skips each job that finished there with the same config (its
`finished.json`), goes on from the checkpoint of one a signal stopped, and runs any other afresh."""

import json
import logging
import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from primer.config import task_config
from primer.run.dashboard import VAL_LOSS
from primer.run.files import EVENT_FILES, INTERRUPTED, INTERRUPTED_FILE, METRICS_FILE, RUN_RECORDS
from primer.sweeps.report import read_data
from primer.writes import write_atomic

RECORD = "finished.json"  # the job's resolved config and its result: .hydra/ is rewritten before the task starts
log = logging.getLogger(__name__)


def interrupted_checkpoint(cfg: DictConfig) -> str | None:
    """The checkpoint a signal left in this job's dir, unless the command line chose a ckpt_path."""
    job_dir = Path(cfg.paths.output_dir)
    ckpt = job_dir / "checkpoints" / INTERRUPTED
    if cfg.get("ckpt_path") is None and (job_dir / INTERRUPTED_FILE).is_file() and ckpt.is_file():
        return str(ckpt)
    return None


def finished_result(cfg: DictConfig, resumes: bool = False) -> float | None:
    """What the job returned when it finished here with this config; None: run it (its earlier records removed)."""
    job_dir, unreadable = Path(cfg.paths.output_dir), []
    stored = read_data(job_dir / RECORD, _stored, unreadable) if (job_dir / METRICS_FILE).is_file() else None
    if unreadable:
        log.warning(f"{unreadable[0]}; the job runs again")
    if stored is not None and stored[0] == _config(cfg):
        log.info(f"skipped {job_dir.name}: finished earlier with this config; its results are kept")
        return stored[1]
    if not resumes:  # a resumed job's records come back if it stops again before a step, its curve goes on
        for stale in (RECORD, *RUN_RECORDS, *job_dir.glob(EVENT_FILES)):  # else the summary shows both attempts
            (job_dir / stale).unlink(missing_ok=True)
    return None


def _stored(text: str) -> tuple[dict, float]:
    record = json.loads(text)  # a damaged record raises, and is named
    return record["config"], math.nan if record["result"] is None else float(record["result"])


def record_finished(cfg: DictConfig) -> None:
    """Once the job's training finished (its metrics.json), its config and result (val/loss, as the task returns)."""
    job_dir = Path(cfg.paths.output_dir)
    if (metrics := read_data(job_dir / METRICS_FILE, json.loads)) is None:
        return
    from lightning.pytorch.utilities import rank_zero_only  # set by the Trainer, which has run

    if rank_zero_only.rank == 0:  # a job of DDP tasks: one record, as one metrics.json
        result = float(metrics.get(VAL_LOSS, math.nan))  # JSON has no NaN: RunSummary writes it as "nan"
        record = {"config": _config(cfg), "result": result if math.isfinite(result) else None}
        write_atomic(job_dir / RECORD, json.dumps(record, indent=2) + "\n")


def _config(cfg: DictConfig) -> dict:
    """The resolved config as JSON gives it back (so a stored and a fresh one compare equal)."""
    return json.loads(json.dumps(OmegaConf.to_container(task_config(cfg), resolve=True)))
