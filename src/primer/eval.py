"""Score a checkpoint on the validation and test data it was trained with.

    python -m primer.eval ckpt_path=outputs/runs/<run>/checkpoints/final.ckpt
    python -m primer.eval ckpt_path=PATH trainer.accelerator=cpu   # a GPU run, scored on a CPU

The config travels inside the checkpoint (primer.checkpoints.StoreConfig), so the model and
data are rebuilt without repeating the training overrides; `key=value` arguments change it.
Prints the metrics as JSON and writes them next to the checkpoint, as `<name>.eval.json`.
"""

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from primer.config import BadConfig


def evaluate(ckpt_path: str, overrides: list[str] = ()) -> dict[str, float]:
    """The checkpoint's `val/*` and `test/*` metrics, on the data its run was configured with."""
    import lightning as L
    import torch
    from hydra.utils import instantiate

    from primer.checkpoints import CONFIG_KEY, load_checkpoint
    from primer.system import Regression

    checkpoint = load_checkpoint(ckpt_path)  # weights_only: pickled code is refused, never run
    if CONFIG_KEY not in checkpoint:
        raise BadConfig(f"ckpt_path={ckpt_path}: holds no primer config; evaluate a checkpoint written by primer.train")
    cfg = OmegaConf.merge(checkpoint[CONFIG_KEY]["config"], OmegaConf.from_dotlist(list(overrides)))

    torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
    datamodule = instantiate(cfg.data)
    system = Regression(instantiate(cfg.model), optimizer=instantiate(cfg.optimizer), input_dim=cfg.data.input_dim)
    system.load_state_dict(checkpoint["state_dict"])
    trainer = instantiate(cfg.trainer, devices=1, logger=False, callbacks=[], enable_checkpointing=False,
                          enable_progress_bar=False, enable_model_summary=False)
    metrics = {}
    for run in (trainer.validate, trainer.test):
        for results in run(system, datamodule=datamodule, verbose=False):
            metrics.update(results)
    return {name: float(value) for name, value in sorted(metrics.items())}


def main(argv: list[str] | None = None) -> None:
    """`ckpt_path=PATH [key=value ...]`; bad input ends in one line and exit code 2."""
    args = sys.argv[1:] if argv is None else argv
    try:
        if any("=" not in a for a in args) or not any(a.startswith("ckpt_path=") for a in args):
            raise BadConfig("usage: python -m primer.eval ckpt_path=PATH [key=value ...]")
        ckpt_path = next(a for a in args if a.startswith("ckpt_path=")).partition("=")[2]
        metrics = evaluate(ckpt_path, [a for a in args if not a.startswith("ckpt_path=")])
    except BadConfig as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    text = json.dumps(metrics, indent=2) + "\n"
    Path(ckpt_path).with_suffix(".eval.json").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
