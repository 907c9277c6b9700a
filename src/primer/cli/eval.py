"""Score a checkpoint on the validation and test data it was trained with.

    python -m primer.eval ckpt_path=outputs/runs/<run>/checkpoints/final.ckpt
    python -m primer.eval ckpt_path=PATH trainer.accelerator=cpu   # a GPU run, scored on a CPU
    python -m primer.eval ckpt_path=PATH data.seed=1               # other data: written beside, not over
    python -m primer.eval ckpt_path=PATH data.teacher_seed=1       # data=teacher: a new teacher, not new samples

The config travels inside the checkpoint (primer.run.checkpoints.StoreConfig), so the model and
data are rebuilt without repeating the training overrides; `key=value` arguments change it
(the model's keys excepted: the weights fix the model). Prints the metrics as JSON and writes
them next to the checkpoint, as `<name>.eval.json`, or `<name>.eval.<overrides>.json` with overrides.
For data=teacher, other data is one of two things, named on the console and in the file name:
new samples of the teacher the model learned (data.seed), or a new teacher (data.teacher_seed).
"""

import json
import math
import re
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from primer.config import key_and_value
from primer.exits import BadConfig, setting_up
from primer.writes import write_atomic

USAGE = "usage: python -m primer.eval ckpt_path=PATH [key=value ...]"


def evaluate(ckpt_path: str, overrides: list[str] = ()) -> tuple[dict[str, float], DictConfig]:
    """The checkpoint's `val/*` and `test/*` metrics, on the data its run was configured with, and that config."""
    from primer.checks.checkpoint_files import load_checkpoint

    checkpoint = load_checkpoint(ckpt_path)  # weights_only: pickled code is refused, never run
    cfg = eval_config(checkpoint, ckpt_path, list(overrides))
    metrics, _ = score(checkpoint, cfg)
    return metrics, cfg


def score(checkpoint: dict, cfg: DictConfig) -> tuple[dict[str, float], dict]:
    """The `val/*` and `test/*` metrics of the checkpoint's weights on cfg's data, and the objects that
    measured them (trainer, system, datamodule, cfg)."""
    import torch
    from hydra.utils import instantiate

    from primer.cli.build import data_net_optimizer
    from primer.cli.quiet import quiet_third_party
    from primer.run.system import Regression

    quiet_third_party()
    torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
    datamodule, net, optimizer = data_net_optimizer(cfg)
    system = Regression(net, optimizer=optimizer, input_dim=cfg.data.input_dim)
    try:  # load_checkpoint has checked that state_dict holds tensors by name
        system.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:  # torch lists the keys and shapes over several lines
        detail = " ".join(str(error).split())[:300]
        raise BadConfig(f"the checkpoint's weights do not fit the model its config names: {detail}") from None
    with setting_up("trainer"):
        trainer = instantiate(cfg.trainer, devices=1, logger=False, callbacks=[], enable_checkpointing=False,
                              enable_progress_bar=False, enable_model_summary=False)
    metrics = {}
    with setting_up("trainer.validate"):
        for run in (trainer.validate, trainer.test):
            for results in run(system, datamodule=datamodule, verbose=False):
                metrics.update(results)
    objects = {"trainer": trainer, "system": system, "datamodule": datamodule, "cfg": cfg}
    return {name: float(value) for name, value in sorted(metrics.items())}, objects


def eval_config(checkpoint: dict, ckpt_path: str, overrides: list[str]) -> DictConfig:
    """The training run's stored config with `overrides` applied, checked as a training config is."""
    from primer.run.checkpoints import CONFIG_KEY
    from primer.checks.hydra_errors import close_sibling, dotted_keys
    from primer.checks.validation import check

    if CONFIG_KEY not in checkpoint:
        raise BadConfig(f"ckpt_path={ckpt_path}: holds no primer config; evaluate a checkpoint written by primer.train")
    for group in ("model", "data", "optimizer", "trainer"):  # what eval builds; stored_config checked the rest
        if not isinstance(checkpoint[CONFIG_KEY]["config"].get(group), dict):
            raise BadConfig(f"ckpt_path={ckpt_path}: its stored config has no {group} group; evaluate a checkpoint "
                            "written by primer.train")
    cfg = for_scoring(OmegaConf.create(checkpoint[CONFIG_KEY]["config"]))
    known = dotted_keys(cfg)
    for override in overrides:
        key, text = key_and_value(override)
        if key not in known:  # a key is changed here, never added (`+key=`): the run trained without it
            hint = f"did you mean {close}?" if (close := close_sibling(key, known)) else \
                "primer.eval changes only keys of the config the checkpoint holds"
            raise BadConfig(f"{key}: no such key; {hint}")
        if key.startswith("model."):
            raise BadConfig(f"{override}: ckpt_path={ckpt_path} holds a model with {key}="
                            f"{OmegaConf.select(cfg, key)}; the weights fix the model, so evaluate it as trained")
        if key in NOT_USED:
            raise BadConfig(f"{override}: primer.eval scores the weights with no {NOT_USED[key]}; drop it")
        if isinstance(node := OmegaConf.select(cfg, key), DictConfig):  # `data=teacher`: a group of conf/
            raise BadConfig(f"{override}: primer.eval sets keys of the config the checkpoint holds, not whole groups; "
                            f"give the keys to change, as {_example_key(key, node)}")
        OmegaConf.update(cfg, key, OmegaConf.from_dotlist([f"x={text}"]).x, merge=True)
    check(cfg)
    return cfg


# The groups of a training config that scoring does not use (score: no callbacks, no loggers, no steps).
NOT_USED = {"optimizer": "optimizer (it trains nothing)", "scheduler": "lr scheduler (it trains nothing)",
            "callbacks": "callbacks", "logger": "logger (it writes only its .eval.json)"}
# What people mean by a group choice at evaluation time, said as the key that does it.
EXAMPLE_KEYS = {"data": "data.seed=1", "trainer": "trainer.accelerator=gpu"}


def _example_key(key: str, node: DictConfig) -> str:
    if key in EXAMPLE_KEYS:
        return EXAMPLE_KEYS[key]
    name = next((k for k in node if not str(k).startswith("_")), "KEY")
    return f"{key}.{name}=..."


def for_scoring(cfg: DictConfig) -> DictConfig:
    """A training config made fit to score with: it writes only its .eval.json, on one node."""
    OmegaConf.set_struct(cfg, True)
    with open_dict(cfg):
        cfg.trainer.profiler = cfg.trainer.default_root_dir = None  # no profiler traces into a dir the file names
        cfg.trainer.num_nodes = 1  # on one device (score): a stored num_nodes=2 would wait for a node forever
        cfg.ckpt_path = None  # what training resumed from is not what is evaluated
    return cfg


OTHER_DATA = {  # data=teacher: what a changed seed means, and the note that says so
    "new_teacher": "{key}: a new teacher, not the one this model learned: expect a low or negative r2 "
                   "(data.seed alone gives new samples of the same teacher)",
    "new_samples": "{key}: new samples of the teacher this model learned (data.teacher_seed={teacher_seed}): "
                   "val/* and test/* measure generalization to them",
}


def other_data(cfg: DictConfig, overrides: list[str]) -> str | None:
    """For data=teacher: "new_teacher" (data.teacher_seed changed), "new_samples" (data.seed alone), or None."""
    keys = {key_and_value(o)[0] for o in overrides}
    if cfg.data.target != "teacher":
        return None
    return "new_teacher" if "data.teacher_seed" in keys else "new_samples" if "data.seed" in keys else None


def output_path(ckpt_path: str, overrides: list[str], other: str | None = None) -> Path:
    """`final.eval.json`, or `final.eval.data.seed=1.json` (`final.eval.new_samples.data.seed=1.json` for
    data=teacher): an evaluation of other data never replaces it."""
    parts = [other] if other else []
    parts += [re.sub(r"[^\w.=,+-]", "_", ",".join(overrides))] if overrides else []
    return Path(ckpt_path).with_suffix("".join(f".{part}" for part in ["eval", *parts, "json"]))


def strict_json(metrics: dict[str, float]) -> str:
    """The metrics as JSON, which has no NaN or Infinity: a non-finite value is written as a string
    ("nan", "inf"), as metrics.json writes it."""
    finite = {name: value if math.isfinite(value) else str(value) for name, value in metrics.items()}
    return json.dumps(finite, indent=2, allow_nan=False) + "\n"


def write_results(ckpt_path: str, overrides: list[str], metrics: dict[str, float], cfg: DictConfig) -> Path:
    """Writes the metrics beside the checkpoint (output_path) and returns where."""
    path = output_path(ckpt_path, overrides, other_data(cfg, overrides))
    write_atomic(path, strict_json(metrics))  # a read-only dir or a full disk: one line (primer.exits), exit 5
    return path


def changed_keys(checkpoint: dict, given: DictConfig) -> list[str]:
    """`key=value` for each value of the groups scoring uses that `given` holds otherwise than the checkpoint's
    stored config: the overrides that would turn one into the other, to name the results file of a whole
    config. The stored config is resolved (as eval_config resolves it) but not checked: `given` is what runs."""
    from primer.run.checkpoints import CONFIG_KEY

    stored = for_scoring(OmegaConf.create(checkpoint[CONFIG_KEY]["config"]))  # as scored: the same unused keys
    overrides = []
    for group in ("data", "trainer"):
        try:
            before = OmegaConf.to_container(stored[group], resolve=True)
        except Exception:  # noqa: BLE001  a stored config that does not resolve: every value is named
            before = {}
        after = OmegaConf.to_container(given[group], resolve=True)
        overrides += [f"{group}.{key}={after[key]}" for key in sorted(after) if before.get(key) != after[key]]
    return overrides


def checkpoint_file(typed: str) -> str:
    """The file to score: the path typed, or a run dir's `checkpoints/final.ckpt`. Where there is none, one
    line says what to pass, before torch and Lightning are imported (seconds)."""
    path = Path(typed)
    if path.is_dir():
        if (final := path / "checkpoints" / "final.ckpt").is_file():
            return str(final)
        raise BadConfig(f"ckpt_path={typed}: a dir without checkpoints/final.ckpt; give a checkpoint file, "
                        f"e.g. one in {path / 'checkpoints'}")
    if not path.is_file():
        raise BadConfig(f"ckpt_path={typed}: no such file")
    return typed


def main(argv: list[str] | None = None) -> None:
    """`ckpt_path=PATH [key=value ...]`; primer.eval runs it inside primer.exits.command_line."""
    args = sys.argv[1:] if argv is None else argv
    if {"-h", "--help"} & set(args):
        print(f"{USAGE}\n\n{__doc__.strip()}")
        return
    if any("=" not in a for a in args) or not any(a.startswith("ckpt_path=") for a in args):
        raise BadConfig(USAGE)
    ckpt_path = checkpoint_file(key_and_value(next(a for a in args if a.startswith("ckpt_path=")))[1])
    overrides = [a for a in args if not a.startswith("ckpt_path=")]
    metrics, cfg = evaluate(ckpt_path, overrides)
    other = other_data(cfg, overrides)
    path = write_results(ckpt_path, overrides, metrics, cfg)
    print(path.read_text(), end="")
    print(f"wrote {path}", file=sys.stderr)
    if cfg.data.target == "random":
        print("note: data=random has no held-out rows: val/* and test/* score the training batch itself "
              "(data=teacher has held-out sets)", file=sys.stderr)
    if other:
        key = "data.teacher_seed" if other == "new_teacher" else "data.seed"
        note = OTHER_DATA[other].format(key=f"{key}={OmegaConf.select(cfg, key)}", teacher_seed=cfg.data.teacher_seed)
        print(f"note: {note}", file=sys.stderr)

