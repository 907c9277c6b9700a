"""Re-running a sweep into the same hydra.sweep.dir runs only the jobs that did not finish.

A job that finishes leaves `finished.json` in its dir: its composed config (resolved) and the value
it returned. Hydra rewrites the job's `.hydra/` before the task starts, so only this record says
what config the results in the dir came from. A later run of the same job (same dir) is skipped
when the record holds the same config, and its results stay as they are; any other job runs,
after the record, metrics, failure reason and TensorBoard events of an earlier attempt are removed.

A job a signal stopped (`interrupted.txt` beside its `checkpoints/interrupted.ckpt`) goes on from that
checkpoint instead, through the checks every resume passes (primer.checks.checkpoint_files.check_resume);
its TensorBoard events and log stay, so its curve goes on from the step it stopped at.
"""

import json
import logging
import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from primer.config import task_config
from primer.run.files import EVENT_FILES, INTERRUPTED_FILE, RUN_RECORDS
from primer.writes import write_atomic

RECORD = "finished.json"
INTERRUPTED_CKPT = "interrupted.ckpt"  # primer.run.guards.SaveOnInterrupt's file, in <job dir>/checkpoints

log = logging.getLogger(__name__)


def interrupted_checkpoint(cfg: DictConfig) -> str | None:
    """The checkpoint this job saved in its dir when a signal stopped it, to go on from; None: none, or the
    command line chose a ckpt_path of its own."""
    job_dir = Path(cfg.paths.output_dir)
    ckpt = job_dir / "checkpoints" / INTERRUPTED_CKPT
    if cfg.get("ckpt_path") is None and (job_dir / INTERRUPTED_FILE).is_file() and ckpt.is_file():
        return str(ckpt)
    return None


def finished_result(cfg: DictConfig, resumes: bool = False) -> float | None:
    """The value this job returned when it finished in this dir with this config; None: run it.
    `resumes`: the job goes on from its interrupted checkpoint, so its TensorBoard events stay."""
    job_dir = Path(cfg.paths.output_dir)
    record = job_dir / RECORD
    if record.is_file() and (job_dir / "metrics.json").is_file() and (stored := _read(record)) is not None:
        if stored["config"] == _config(cfg):
            log.info(f"skipped {job_dir.name}: finished earlier with this config; its results are kept")
            return math.nan if stored["result"] is None else stored["result"]
    if resumes:  # its records move aside as it starts, and come back if it is stopped again before a step
        return None  # (primer.run.run_dir); its events stay: the curve goes on
    for stale in (RECORD, *RUN_RECORDS):  # an earlier attempt's, or another config's
        (job_dir / stale).unlink(missing_ok=True)
    for events in job_dir.glob(EVENT_FILES):  # else the summary and TensorBoard show both attempts
        events.unlink()
    return None


def _read(record: Path) -> dict | None:
    """The record, or None where it is damaged: the job then runs again, and the log names the file."""
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
    """Writes the record that lets a re-run skip this job."""
    from lightning.pytorch.utilities import rank_zero_only  # set by the Trainer; train() has imported lightning

    if rank_zero_only.rank != 0:
        return  # a job of DDP tasks: one record, as one metrics.json
    job_dir = Path(cfg.paths.output_dir)
    record = {"config": _config(cfg), "result": result if math.isfinite(result) else None}
    write_atomic(job_dir / RECORD, json.dumps(record, indent=2) + "\n")


def _config(cfg: DictConfig) -> dict:
    """The resolved config as JSON gives it back (so a stored and a fresh one compare equal)."""
    return json.loads(json.dumps(OmegaConf.to_container(task_config(cfg), resolve=True)))
