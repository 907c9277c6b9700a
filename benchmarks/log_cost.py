"""What one `self.log` call costs inside a training step, on a bare Trainer.

    python -m benchmarks.log_cost --steps 2000 --names 4 --threads 1

A LightningModule on a tiny linear model logs `--names` values at every step and times those calls
alone, with the chosen clock; the report is the median per call over the steps after the first tenth.
The epoch holds every step (one long epoch, as primer's runs), so Lightning registers each name once
and every later call takes its update path, the one a run pays on each logging step.
"""

import argparse
import statistics
import sys

import lightning.pytorch as pl
import torch

from benchmarks.steady import CLOCKS


class LoggingRegression(pl.LightningModule):
    """A linear regression whose training step logs `names` detached copies of its loss, timed."""

    def __init__(self, names: int, clock: str):
        super().__init__()
        self.linear = torch.nn.Linear(10, 1)
        self.names, self.clock = names, CLOCKS[clock]
        self.seconds_per_call: list[float] = []

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        (x,) = batch
        loss = self.linear(x).pow(2).sum()
        value = loss.detach()
        start = self.clock()
        for i in range(self.names):
            self.log(f"train/value_{i}", value)
        self.seconds_per_call.append((self.clock() - start) / self.names)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def log_cost(steps: int, names: int, clock: str = "cpu") -> tuple[float, dict]:
    """Median seconds per `self.log` call after the first tenth of the steps, and the trainer's callback_metrics."""
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(64 * steps, 10))
    system = LoggingRegression(names, clock)
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_steps=steps, logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False,
    )
    trainer.fit(system, torch.utils.data.DataLoader(data, batch_size=64))
    return statistics.median(system.seconds_per_call[steps // 10:]), dict(trainer.callback_metrics)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.log_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="training steps, every one logging")
    parser.add_argument("--names", type=int, default=4, help="values logged per step (primer logs 4)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="wall or this process's CPU")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    seconds, logged = log_cost(args.steps, args.names, args.clock)
    missing = [f"train/value_{i}" for i in range(args.names) if f"train/value_{i}" not in logged]
    if missing:
        print(f"not logged: {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"self.log, {args.names} names a step, {args.steps} steps, {args.clock} clock, lightning {pl.__version__}: "
          f"{seconds * 1e6:.0f} us per call (median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
