"""usage: python -m primer.eval ckpt_path=PATH [key=value ...]

Scores a checkpoint on the data it was trained with, rebuilt from the config it holds; `key=value` changes that
config (not the model's keys: the weights fix the model). Prints the metrics as JSON and writes them beside it:
    python -m primer.eval ckpt_path=outputs/runs/<run>/checkpoints/final.ckpt   # final.eval.json
    python -m primer.eval ckpt_path=PATH data.seed=1               # other data: final.eval.data.seed=1.json
    python -m primer.eval ckpt_path=PATH data.teacher_seed=1       # data=teacher: a new teacher, not new samples
    python -m primer.eval ckpt_path=PATH trainer.accelerator=cpu   # a GPU run, scored on a CPU
"""

import json
import math
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from primer.config import key_and_value
from primer.exits import BadConfig, first_line, setting_up
from primer.writes import write_atomic

NOT_USED = {"optimizer": "optimizer (it trains nothing)", "scheduler": "lr scheduler (it trains nothing)",
            "callbacks": "callbacks", "logger": "logger (it writes only its .eval.json)"}
EXAMPLE_KEYS = {"data": "data.seed=1", "trainer": "trainer.accelerator=gpu"}  # what a group choice is meant to do
OTHER_DATA = {  # data=teacher: what a changed seed means
    "data.teacher_seed": ("new_teacher", "a new teacher, not the one this model learned: expect a low or negative r2 "
                                         "(data.seed alone gives new samples of the same teacher)"),
    "data.seed": ("new_samples", "new samples of the teacher this model learned (data.teacher_seed={teacher_seed}): "
                                 "val/* and test/* measure generalization to them")}


def arguments(args: list[str]) -> tuple[str, list[str]] | None:
    """(checkpoint file, overrides) of the command line, before torch is imported; None after --help."""
    if {"-h", "--help"} & set(args):
        print(__doc__.strip())
        return None
    if any("=" not in a for a in args) or not any(a.startswith("ckpt_path=") for a in args):
        raise BadConfig(__doc__.partition("\n")[0])
    typed = next(a for a in args if a.startswith("ckpt_path=")).partition("=")[2]
    run_dir = Path(typed).is_dir()  # stands for its final checkpoint
    if not (path := Path(typed, "checkpoints", "final.ckpt") if run_dir else Path(typed)).is_file():
        raise BadConfig(f"ckpt_path={typed}: " + (f"a dir without checkpoints/final.ckpt; give a checkpoint file, e.g. "
                                                  f"one in {path.parent}" if run_dir else "no such file"))
    return str(path), [a for a in args if not a.startswith("ckpt_path=")]


def eval_config(ckpt_path: str, config) -> tuple[dict, DictConfig, list[str]]:
    """(checkpoint, config to score it with, overrides that name the results file: a whole config's changed keys)."""
    from primer.checks.checkpoint_files import load_checkpoint
    from primer.checks.validation import check
    from primer.config import task_config
    from primer.run.checkpoints import CONFIG_KEY

    checkpoint = load_checkpoint(ckpt_path)  # weights_only: pickled code is refused, never run
    if CONFIG_KEY not in checkpoint:
        raise BadConfig(f"ckpt_path={ckpt_path}: holds no primer config; evaluate a checkpoint written by primer.train")
    stored = _for_scoring(OmegaConf.create(checkpoint[CONFIG_KEY]["config"]))
    if isinstance(config, DictConfig):
        cfg = _for_scoring(task_config(config))
        with open_dict(cfg):
            cfg.paths.output_dir = str(Path(ckpt_path).parent)  # resolvable without Hydra; nothing is written there
        overrides = [f"{group}.{key}={value}" for group in ("data", "trainer")
                     for key, value in sorted(OmegaConf.to_container(cfg[group], resolve=True).items())
                     if stored[group].get(key) != value]
    else:
        cfg, overrides = stored, list(config)
        _override(cfg, overrides, ckpt_path)
    check(cfg)
    return checkpoint, cfg, overrides


def _override(cfg: DictConfig, overrides: list[str], ckpt_path: str) -> None:
    """Sets each override's key, as Hydra's parser reads it, where the stored config has that key."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from primer.checks import entries
    from primer.checks.hydra_errors import close_sibling

    for typed in overrides:
        try:
            override = OverridesParser.create().parse_override(typed)
        except Exception as error:  # noqa: BLE001  Hydra's own reason, in one line
            raise BadConfig(f"{typed}: not an override Hydra reads ({first_line(error)})") from None
        key = override.key_or_group
        if (node := OmegaConf.select(cfg, key, default=KeyError)) is KeyError:  # changed, never added: trained without
            known = [k for k, _ in entries(OmegaConf.to_container(cfg)) if "[" not in k]  # keys, not list items
            hint = f"did you mean {close}?" if (close := close_sibling(key, known)) else \
                "primer.eval changes only keys of the config the checkpoint holds"
            raise BadConfig(f"{key}: no such key; {hint}")
        if key.startswith("model."):
            raise BadConfig(f"{typed}: ckpt_path={ckpt_path} holds a model with {key}={node}; the weights fix the "
                            "model, so evaluate it as trained")
        if key in NOT_USED:
            raise BadConfig(f"{typed}: primer.eval scores the weights with no {NOT_USED[key]}; drop it")
        if override.is_sweep_override():
            raise BadConfig(f"{typed}: primer.eval scores one config; give one value")
        if isinstance(node, DictConfig):  # `data=teacher` names a file of conf/
            raise BadConfig(f"{typed}: primer.eval sets keys of the config the checkpoint holds, not whole groups; "
                            f"give the keys to change, as {EXAMPLE_KEYS.get(key, f'{key}.KEY=VALUE')}")
        OmegaConf.update(cfg, key, override.value(), merge=True)


def _for_scoring(cfg: DictConfig) -> DictConfig:
    """A training config fit to score with: it writes only its .eval.json, on one node."""
    OmegaConf.set_struct(cfg, True)
    with open_dict(cfg):
        cfg.trainer.profiler = cfg.trainer.default_root_dir = None  # no profiler traces into a dir the file names
        cfg.trainer.num_nodes = 1  # a stored num_nodes=2 would wait for a second node forever
        cfg.ckpt_path = None  # what training resumed from is not what is evaluated
    return cfg


def score(checkpoint: dict, cfg: DictConfig) -> tuple[dict[str, float], dict]:
    """The `val/*` and `test/*` metrics of the weights on cfg's data, and the objects that measured them."""
    import torch
    from hydra.utils import instantiate

    from primer.cli.build import data_net_optimizer
    from primer.cli.quiet import quiet_third_party
    from primer.run.system import Regression

    quiet_third_party()
    torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
    datamodule, net, optimizer = data_net_optimizer(cfg)
    system = Regression(net, optimizer=optimizer, input_dim=cfg.data.input_dim)
    try:
        system.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:  # torch lists the keys and shapes over several lines
        raise BadConfig(f"the checkpoint's weights do not fit the model its config names: "
                        f"{' '.join(str(error).split())[:300]}") from None
    with setting_up("trainer"):
        trainer = instantiate(cfg.trainer, devices=1, logger=False, callbacks=[], enable_checkpointing=False,
                              enable_progress_bar=False, enable_model_summary=False)
    with setting_up("trainer.validate"):
        metrics = {k: float(v) for run in (trainer.validate, trainer.test)
                   for results in run(system, datamodule=datamodule, verbose=False) for k, v in results.items()}
    return dict(sorted(metrics.items())), {"trainer": trainer, "system": system, "datamodule": datamodule, "cfg": cfg}


def write_results(ckpt_path: str, overrides: list[str], metrics: dict[str, float], cfg: DictConfig) -> Path:
    """Writes the metrics as strict JSON beside the checkpoint (other data: beside the first, not over it); its path."""
    other = _other_data(cfg, overrides)
    parts = ["eval", *([OTHER_DATA[other][0]] if other else []), re.sub(r"[^\w.=,+-]", "_", ",".join(overrides))]
    path = Path(ckpt_path).with_suffix("".join(f".{part}" for part in [*parts, "json"] if part))
    finite = {name: value if math.isfinite(value) else str(value) for name, value in metrics.items()}  # as metrics.json
    write_atomic(path, json.dumps(finite, indent=2, allow_nan=False) + "\n")  # a full disk: one line, exit 5
    return path


def notes(cfg: DictConfig, overrides: list[str]) -> list[str]:
    """What the scores measure, where that is not what they seem to."""
    found = ["data=random has no held-out rows: val/* and test/* score the training batch itself (data=teacher has "
             "held-out sets)"] if cfg.data.target == "random" else []
    if other := _other_data(cfg, overrides):
        found.append(f"{other}={OmegaConf.select(cfg, other)}: " + OTHER_DATA[other][1].format(**cfg.data))
    return found


def _other_data(cfg: DictConfig, overrides: list[str]) -> str | None:
    keys = {key_and_value(o)[0] for o in overrides}
    return next((k for k in OTHER_DATA if k in keys), None) if cfg.data.target == "teacher" else None
