"""primer from Python (notebooks, tests): the command line's runs and checks, the same files written.
`metrics, objects = fit(["model=manual"])`, then `scores, _ = evaluate(CKPT_PATH)` (README.md has the example)."""

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omegaconf import DictConfig

LOGGERS = ("", "lightning.pytorch", "lightning.fabric")  # the root, then Lightning's: where Lightning's lines show


def fit(config: "Sequence[str] | DictConfig" = (), output_dir: str | Path | None = None) -> tuple[dict, dict]:
    """As `python -m primer.train` (checks, run dir, train.log): (final metrics, {trainer, system, datamodule, cfg})."""
    import copy

    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig, OmegaConf, open_dict

    from primer.checks.hydra_errors import describe_hydra_error
    from primer.checks.preflight import check_job
    from primer.cli.task import run_records
    from primer.cli.train import fit_run
    from primer.config import CONFIG_DIR, CONFIG_NAME, task_config
    from primer.run import run_dir
    from primer.run.checkpoints import resumes_into
    from primer.writes import write_atomic

    overrides = [] if isinstance(config, DictConfig) else list(config)
    try:  # job_name: the command line's, which names the log file (train.log)
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3", job_name="train"):
            cfg = compose(CONFIG_NAME, overrides=overrides, return_hydra_config=True)
    except Exception as error:  # Hydra's own rejections: unknown key, group or choice, unreadable override
        raise describe_hydra_error(error, overrides) from error
    if isinstance(config, DictConfig):  # the caller's config (left as it was), with Hydra's node if it has none
        hydra, cfg = cfg.hydra, copy.deepcopy(config)
        with open_dict(cfg):
            if "hydra" not in cfg:
                cfg.hydra = hydra
            cfg.hydra.job.name = hydra.job.name
    with open_dict(cfg):  # what @hydra.main sets before it calls the task
        cfg.hydra.runtime.output_dir = path = str(Path(output_dir or cfg.hydra.run.dir).absolute())
        if OmegaConf.is_interpolation(cfg.paths, "output_dir"):  # the run dir, resolvable once fit() returns
            cfg.paths.output_dir = path
    before = HydraConfig.instance().cfg  # the caller's (None in a notebook): theirs again once fit ends
    HydraConfig().set_config(cfg)
    try:
        check_job(cfg, multirun=False)
        # as on the command line: claimed before its configs and log are written, given back if it ends before a step
        run_dir.claim(path, f"output_dir={path}", resumes_into(cfg, path), hydra_files=(".hydra", "train.log"))
        with run_dir.given_back_unless_started():
            Path(path, ".hydra").mkdir(parents=True, exist_ok=True)
            write_atomic(Path(path, ".hydra", "config.yaml"), OmegaConf.to_yaml(task_config(cfg)))
            write_atomic(Path(path, ".hydra", "overrides.yaml"), OmegaConf.to_yaml(list(cfg.hydra.overrides.task)))
            with run_records(cfg, multirun=False), _run_logging(cfg):  # failure.txt, a drawn seed: as the command line
                return fit_run(cfg)
    finally:
        HydraConfig.instance().cfg = before


def evaluate(ckpt_path: str | Path, config: "Sequence[str] | DictConfig" = ()) -> tuple[dict, dict]:
    """As `python -m primer.eval` (the same .eval.json): (val/* and test/*, {system, datamodule, cfg, eval_json})."""
    from primer.cli.eval import eval_config, score, write_results
    from primer.cli.quiet import set_up_lines
    from primer.run.console import filtered

    checkpoint, cfg, overrides = eval_config(str(ckpt_path), config)
    with filtered(set_up_lines, [h for name in LOGGERS for h in logging.getLogger(name).handlers]):
        metrics, objects = score(checkpoint, cfg)
    objects["eval_json"] = write_results(str(ckpt_path), overrides, metrics, cfg)
    return metrics, objects


@contextlib.contextmanager
def _run_logging(cfg: "DictConfig"):
    """Hydra's job logging for the run (train.log), Lightning's set-up lines on the file only; the caller's after."""
    from hydra.core.utils import configure_log

    from primer.cli.quiet import set_up_lines
    from primer.run.console import filtered

    loggers = [logging.getLogger(name) for name in LOGGERS]
    saved = [(lg.handlers[:], lg.propagate, lg.level) for lg in loggers]
    configure_log(cfg.hydra.job_logging, cfg.hydra.verbose)
    for lg in loggers[1:]:  # Lightning, imported first, gave them handlers: its lines go through the root's
        lg.handlers, lg.propagate = [], True
    ours = [h for h in loggers[0].handlers if h not in saved[0][0]]
    try:
        with filtered(set_up_lines, [h for h in ours if not isinstance(h, logging.FileHandler)]):
            yield
    finally:
        for handler in ours:
            handler.close()
        for lg, (handlers, propagate, level) in zip(loggers, saved):
            lg.handlers, lg.propagate = handlers, propagate
            lg.setLevel(level)
