"""The steady-state runs benchmarks.bench compares: the primer's plain loop (A), `python -m primer.train`
in this process (B) and a bare Lightning Trainer on the same net, data and optimizer, side by side.

Time per step is measured inside each run, from the start of step `warmup` to the end of the last
step, so set-up and the end of the run are left out.
"""

import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch

from benchmarks.plainloop import plain_loop, sync

RTOL = 1e-5  # how close primer's final loss must be to the plain loop's
# wall: what a user waits. cpu: this process's CPU seconds, which other load on the machine barely
# changes (with --threads 1; with more threads, idle threads' spinning counts too).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


class StepTimer(pl.Callback):
    """Writes the seconds per training step, from the start of step `warmup` to the end of the last, and
    the last step's loss, to `path`."""

    def __init__(self, path: str, warmup: int, clock: str = "wall"):
        self.path, self.warmup, self.clock, self.start = Path(path), warmup, CLOCKS[clock], 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.warmup:
            sync(pl_module.device)
            self.start = self.clock()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step == trainer.max_steps:
            sync(pl_module.device)
            seconds = (self.clock() - self.start) / (trainer.max_steps - self.warmup)
            loss = float(outputs["loss"] if isinstance(outputs, dict) else outputs)
            self.path.write_text(json.dumps({"seconds_per_step": seconds, "loss": loss}))


class BareRegression(pl.LightningModule):
    """What a Lightning user writes by hand for the primer: its step and its optimizer, nothing logged."""

    def __init__(self, net: torch.nn.Module, lr: float):
        super().__init__()
        self.net, self.lr = net, lr

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y, reduction="sum")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.net.parameters(), lr=self.lr)


def bare_fit(size: dict, device: str, warmup: int, out_dir: Path, clock: str = "wall") -> tuple[float, float]:
    """A bare Lightning Trainer on the primer's net, data and optimizer; returns (final loss, seconds per step)."""
    from primer.run.data import SyntheticRegression
    from primer.tutorial.nets import TwoLayerNet

    steps, seed = size["trainer.max_steps"], size["seed"]
    data = SyntheticRegression(size["data.batch_size"], size["data.input_dim"], size["data.output_dim"], steps,
                               seed=seed)
    torch.manual_seed(seed)  # as primer's seed_everything leaves it before the net is made
    net = TwoLayerNet(size["data.input_dim"], size["model.hidden_dim"], size["data.output_dim"])
    timer_path = out_dir / "step_timer.json"
    trainer = pl.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu", devices=1, max_steps=steps, logger=False,
        callbacks=[StepTimer(str(timer_path), warmup, clock)], enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False,
    )
    trainer.fit(BareRegression(net, size["optimizer.lr"]), datamodule=data)
    timed = json.loads(timer_path.read_text())
    return timed["loss"], timed["seconds_per_step"]


def primer_fit(size: dict, device: str, warmup: int, out_dir: Path, clock: str = "wall") -> tuple[float, float]:
    """One `python -m primer.train` run in this process; returns (final train/loss, seconds per step)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from primer.config import CONFIG_DIR, CONFIG_NAME
    from primer.cli.train import fit_run

    timer_path = out_dir / "step_timer.json"
    overrides = [
        f"hydra.run.dir={out_dir}",
        f"trainer={'gpu' if device == 'cuda' else 'cpu'}",
        *(f"{key}={value}" for key, value in size.items()),
        "+callbacks.step_timer._target_=benchmarks.steady.StepTimer",
        f"+callbacks.step_timer.path={timer_path}",
        f"+callbacks.step_timer.warmup={warmup}",
        f"+callbacks.step_timer.clock={clock}",
    ]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)  # what @hydra.main does before calling the task
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):  # the bar draws, unseen
        metrics, _ = fit_run(cfg)
    return metrics["train/loss"], json.loads(timer_path.read_text())["seconds_per_step"]


def plain_fit(size: dict, device: str, warmup: int, clock: str = "wall") -> tuple[float, float]:
    return plain_loop(
        batch_size=size["data.batch_size"],
        input_dim=size["data.input_dim"],
        hidden_dim=size["model.hidden_dim"],
        output_dim=size["data.output_dim"],
        steps=size["trainer.max_steps"],
        lr=size["optimizer.lr"],
        seed=size["seed"],
        device=device,
        warmup=warmup,
        clock=CLOCKS[clock],
    )


def side_by_side(size: dict, device: str, repeats: int, workdir: Path, clock: str = "wall", bare: bool = False) -> dict:
    """A B A B ... (A B C with the bare Trainer) after one untimed round; medians of seconds per step,
    every final loss, and the median of each round's primer / bare ratio."""
    warmup = max(1, size["trainer.max_steps"] // 10)
    fits = {"plain": lambda: plain_fit(size, device, warmup, clock),
            "primer": lambda: primer_fit(size, device, warmup, Path(tempfile.mkdtemp(dir=workdir)), clock)}
    if bare:
        fits["bare"] = lambda: bare_fit(size, device, warmup, Path(tempfile.mkdtemp(dir=workdir)), clock)
    runs = {kind: [] for kind in fits}
    for repeat in range(repeats + 1):
        measured = {kind: fit() for kind, fit in fits.items()}
        if repeat > 0:
            for kind, run in measured.items():
                runs[kind].append(run)
    losses = [loss for kind in runs.values() for loss, _ in kind]
    result = {f"{kind}_s": statistics.median(s for _, s in runs[kind]) for kind in runs}
    result |= {f"{kind}_loss": runs[kind][0][0] for kind in runs}
    result["ratio"] = result["primer_s"] / result["plain_s"]
    if bare:  # ratios of the same round, where the machine's load was about the same for both
        result["over_bare"] = statistics.median(p / b for (_, p), (_, b) in zip(runs["primer"], runs["bare"]))
    result["same_loss"] = all(abs(loss - losses[0]) <= RTOL * abs(losses[0]) for loss in losses)
    return result


def make_size(batch: int, hidden: int, steps: int, input_dim: int = 1000, output_dim: int = 10) -> dict:
    """The primer.train overrides of one size. lr shrinks as the summed loss grows, so big sizes stay finite."""
    return {
        "data.batch_size": batch,
        "data.input_dim": input_dim,
        "data.output_dim": output_dim,
        "model.hidden_dim": hidden,
        "trainer.max_steps": steps,
        "optimizer.lr": 1e-4 * min(1.0, 64 * 100 / (batch * hidden)),
        "seed": 0,
    }

