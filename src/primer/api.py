"""primer from Python, for notebooks and tests: the same runs and checks as the command line.

    from primer import evaluate, train

    metrics, objects = train(["model=manual", "trainer.max_steps=100"])    # overrides, as typed
    metrics, objects = train(cfg)                                         # or a config composed from conf/
    objects["trainer"], objects["system"], objects["datamodule"], objects["cfg"]
    scores, objects = evaluate(objects["trainer"].checkpoint_callback.best_model_path)

Bad input raises primer.exits.BadConfig (its message is the command line's one line); a diverged run
raises Diverged. Nothing here imports torch, Lightning or Hydra until it is called.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omegaconf import DictConfig


def train(config: "Sequence[str] | DictConfig" = (), output_dir: str | Path | None = None) -> tuple[dict, dict]:
    """Trains as `python -m primer.train OVERRIDES` does and returns (metrics, objects): the final logged
    metrics, and the trainer, system, datamodule and cfg that made them.

    `config`: overrides (`["model=manual", "seed=3"]`), or a config composed from primer's conf/ with
    `hydra.compose` (with or without `return_hydra_config=True`). `output_dir`: where the run writes;
    by default a new `outputs/runs/<time>_<pid>_<overrides>/`, as the command line makes it.
    """
    from primer.checks.preflight import check_job
    from primer.checks.resume import resumes_into
    from primer.cli.train import train as fit
    from primer.run import run_dir

    cfg = _with_runtime(_composed(config), output_dir)
    check_job(cfg, multirun=False)
    path = cfg.paths.output_dir
    # as on the command line: claimed before its configs are written, given back if it ends before its first step
    run_dir.claim(path, f"output_dir={path}", resumes_into(cfg, path), hydra_files=(".hydra",))
    with run_dir.given_back_unless_started():
        _save_configs(cfg)
        return fit(cfg)


def evaluate(ckpt_path: str | Path, config: "Sequence[str] | DictConfig" = ()) -> tuple[dict, dict]:
    """Scores a checkpoint as `python -m primer.eval ckpt_path=PATH OVERRIDES` does (without writing its
    .eval.json) and returns (metrics, objects): the val/* and test/* metrics, and the system, datamodule
    and cfg they were measured with.

    `config`: overrides of the config stored in the checkpoint, or a whole config composed from conf/ to
    build the data and model from instead (checked as a training config is; the weights must fit its model).
    """
    from omegaconf import DictConfig, open_dict

    from primer.checks.checkpoint_files import load_checkpoint
    from primer.checks.validation import check
    from primer.cli.eval import eval_config, for_scoring, score
    from primer.config import task_config

    checkpoint = load_checkpoint(str(ckpt_path))  # weights_only: pickled code is refused, never run
    if isinstance(config, DictConfig):
        cfg = for_scoring(task_config(config))
        with open_dict(cfg):
            cfg.paths.output_dir = str(Path(ckpt_path).parent)  # resolvable without Hydra; nothing is written there
        check(cfg)
    else:
        cfg = eval_config(checkpoint, str(ckpt_path), list(config))
    return score(checkpoint, cfg)


def _composed(config) -> "DictConfig":
    """The config with its `hydra` node: composed from overrides, or completed where the caller composed without it."""
    import copy

    from hydra import compose, initialize_config_dir
    from omegaconf import DictConfig, open_dict

    from primer.checks.hydra_errors import describe_hydra_error
    from primer.config import CONFIG_DIR, CONFIG_NAME

    overrides = [] if isinstance(config, DictConfig) else list(config)
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            composed = compose(CONFIG_NAME, overrides=overrides, return_hydra_config=True)
    except Exception as error:  # Hydra's own rejections: unknown key, group or choice, unreadable override
        raise describe_hydra_error(error, overrides) from error
    if not isinstance(config, DictConfig):
        return composed
    cfg = copy.deepcopy(config)  # the caller's config stays as it was; its struct flag comes along
    if "hydra" not in cfg:
        with open_dict(cfg):
            cfg.hydra = composed.hydra
    return cfg


def _with_runtime(cfg: "DictConfig", output_dir) -> "DictConfig":
    """What @hydra.main sets before it calls the task: Hydra's runtime config and the run's dir."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    import primer.config  # noqa: F401  the resolvers that hydra.run.dir uses

    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(Path(output_dir or cfg.hydra.run.dir).absolute())
        cfg.paths.output_dir = cfg.hydra.runtime.output_dir
    HydraConfig().set_config(cfg)
    return cfg


def _save_configs(cfg: "DictConfig") -> None:
    """The run dir's .hydra/config.yaml and overrides.yaml, as the command line writes them."""
    from omegaconf import OmegaConf

    from primer.config import task_config

    saved = Path(cfg.paths.output_dir, ".hydra")
    saved.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(task_config(cfg), saved / "config.yaml")
    OmegaConf.save(list(cfg.hydra.overrides.task), saved / "overrides.yaml")
