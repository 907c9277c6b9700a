"""primer from Python, for notebooks and tests: the same runs and checks as the command line.

    from primer import evaluate, train

    metrics, objects = train(["model=manual", "trainer.max_steps=100"])    # overrides, as typed
    metrics, objects = train(cfg)                                         # or a config composed from conf/
    objects["trainer"], objects["system"], objects["datamodule"], objects["cfg"]
    scores, objects = evaluate(objects["trainer"].checkpoint_callback.best_model_path)

Bad input raises primer.exits.BadConfig (its message is the command line's one line); a diverged run
raises Diverged. A run writes what the command line's does, `train.log` included, and an evaluation its
`.eval.json`; the console shows the progress and the closing block, Lightning's set-up lines (devices, model
summary) go to `train.log` only. Nothing here imports torch, Lightning or Hydra until it is called.
"""

import contextlib
import logging

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omegaconf import DictConfig


def train(config: "Sequence[str] | DictConfig" = (), output_dir: str | Path | None = None) -> tuple[dict, dict]:
    """Trains as `python -m primer.train OVERRIDES` does and returns (metrics, objects): the final logged
    metrics, and the trainer, system, datamodule and cfg that made them.

    `config`: overrides (`["model=manual", "seed=3"]`), or a config composed from primer's conf/ with
    `hydra.compose` (with or without `return_hydra_config=True`). `output_dir`: the run dir; by default a
    new one under `outputs/runs/`, named as the command line names it. As on the command line, an override
    `paths.output_dir=X` sends what the run writes (checkpoints, events, metrics) to X, and its `.hydra/` and
    `train.log` stay in the run dir.
    """
    from primer.checks.preflight import check_job
    from primer.cli.train import train as fit
    from primer.run import run_dir
    from primer.run.checkpoints import resumes_into

    cfg = _with_runtime(_composed(config), output_dir)
    check_job(cfg, multirun=False)
    path = cfg.hydra.runtime.output_dir
    # as on the command line: claimed before its configs and log are written, given back if it ends before its
    # first step
    run_dir.claim(path, f"output_dir={path}", resumes_into(cfg, path), hydra_files=(".hydra", "train.log"))
    with run_dir.given_back_unless_started():
        _save_configs(cfg)
        with _run_logging(cfg):
            return fit(cfg)


def evaluate(ckpt_path: str | Path, config: "Sequence[str] | DictConfig" = ()) -> tuple[dict, dict]:
    """Scores a checkpoint as `python -m primer.eval ckpt_path=PATH OVERRIDES` does (the same .eval.json beside it) and
    returns (metrics, objects): val/* and test/*, and the system, datamodule, cfg and eval_json behind them.
    `config`: overrides of its stored config, or a whole config composed from conf/ (named by the keys it changes)."""
    from primer.cli.eval import eval_config, score, write_results
    from primer.cli.quiet import set_up_lines

    checkpoint, cfg, overrides = eval_config(str(ckpt_path), config)
    with _filtered(set_up_lines, _console_handlers()):
        metrics, objects = score(checkpoint, cfg)
    objects["eval_json"] = write_results(str(ckpt_path), overrides, metrics, cfg)
    return metrics, objects


def _composed(config) -> "DictConfig":
    """The config with its `hydra` node: composed from overrides, or completed where the caller composed without it."""
    import copy

    from hydra import compose, initialize_config_dir
    from omegaconf import DictConfig, open_dict

    from primer.checks.hydra_errors import describe_hydra_error
    from primer.config import CONFIG_DIR, CONFIG_NAME

    overrides = [] if isinstance(config, DictConfig) else list(config)
    try:  # job_name: as the command line's, which names its log file (train.log)
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3", job_name="train"):
            composed = compose(CONFIG_NAME, overrides=overrides, return_hydra_config=True)
    except Exception as error:  # Hydra's own rejections: unknown key, group or choice, unreadable override
        raise describe_hydra_error(error, overrides) from error
    if not isinstance(config, DictConfig):
        return composed
    cfg = copy.deepcopy(config)  # the caller's config stays as it was; its struct flag comes along
    with open_dict(cfg):
        if "hydra" not in cfg:
            cfg.hydra = composed.hydra
        cfg.hydra.job.name = composed.hydra.job.name
    return cfg


def _with_runtime(cfg: "DictConfig", output_dir) -> "DictConfig":
    """What @hydra.main sets before it calls the task: Hydra's runtime config and the run's dir. paths.output_dir
    follows the run dir unless the caller set it (`paths.output_dir=X`), as on the command line."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    import primer.config  # noqa: F401  the resolvers that hydra.run.dir uses

    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(Path(output_dir or cfg.hydra.run.dir).absolute())
        if OmegaConf.is_interpolation(cfg.paths, "output_dir"):  # ${hydra:runtime.output_dir}: the run dir
            cfg.paths.output_dir = cfg.hydra.runtime.output_dir  # resolvable without Hydra, once train() returns
    HydraConfig().set_config(cfg)
    return cfg


def _save_configs(cfg: "DictConfig") -> None:
    """The run dir's .hydra/config.yaml and overrides.yaml, as the command line writes them."""
    from omegaconf import OmegaConf

    from primer.config import task_config

    saved = Path(cfg.hydra.runtime.output_dir, ".hydra")
    saved.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(task_config(cfg), saved / "config.yaml")
    OmegaConf.save(list(cfg.hydra.overrides.task), saved / "overrides.yaml")


@contextlib.contextmanager
def _run_logging(cfg: "DictConfig"):
    """The command line's logging for one run, the caller's again afterwards: Hydra's job logging
    (conf/hydra/job_logging, which writes the run dir's train.log), with Lightning's set-up lines on the
    file only. Lightning gives its loggers handlers of their own when it is imported before logging is
    configured: they pass through the root's handlers for the run, as on the command line."""
    from hydra.core.utils import configure_log

    from primer.cli.quiet import set_up_lines

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    lightning = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    saved_lightning = [(lg.handlers[:], lg.propagate) for lg in lightning]
    Path(cfg.hydra.runtime.output_dir).mkdir(parents=True, exist_ok=True)
    configure_log(cfg.hydra.job_logging, cfg.hydra.verbose)
    ours = [h for h in root.handlers if h not in saved_handlers]
    for lg in lightning:
        lg.handlers, lg.propagate = [], True
    try:
        with _filtered(set_up_lines, [h for h in ours if not isinstance(h, logging.FileHandler)]):
            yield
    finally:
        for handler in ours:
            handler.close()
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        for lg, (handlers, propagate) in zip(lightning, saved_lightning):
            lg.handlers, lg.propagate = handlers, propagate


def _console_handlers() -> list[logging.Handler]:
    """Where Lightning's lines would show: its loggers' own handlers and the root's."""
    names = ("lightning.pytorch", "lightning.fabric", "")
    return [h for name in names for h in logging.getLogger(name).handlers]


@contextlib.contextmanager
def _filtered(keep, handlers: list[logging.Handler]):
    """`keep` as a filter of `handlers` while the block runs."""
    for handler in handlers:
        handler.addFilter(keep)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(keep)
