"""Does torch.compile(mode="reduce-overhead") (CUDA graphs) take the host overhead out of a step here?

    python -m benchmarks.gpu_compile [--steps 500] [--repeats 3]     # on a machine with a CUDA GPU

Measures, on the GPU, the primer's plain loop and `primer.train` with the net eager and compiled,
at the primer's size (64 x 1000 -> 100 -> 10), and prints ms/step and the final losses as Markdown.
primer's runs here draw no TensorBoard graph (log_graph=false): torch.jit.trace cannot trace a compiled net.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from torch import nn

from benchmarks.steady import make_size, primer_fit
from primer.tutorial.nets import TwoLayerNet
from benchmarks.plainloop import sync


class CompileNet(L.Callback):
    """Replaces the system's net by torch.compile(net, mode=...) before the optimizer is built."""

    def __init__(self, mode: str = "reduce-overhead"):
        self.mode = mode

    def setup(self, trainer, pl_module, stage: str) -> None:
        pl_module.net = torch.compile(pl_module.net, mode=self.mode)


def plain(steps: int, compiled: bool, warmup: int) -> tuple[float, float]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1000, generator=gen).cuda()
    y = torch.randn(64, 10, generator=gen).cuda()
    torch.manual_seed(0)
    model = TwoLayerNet(1000, 100, 10).cuda()
    net = torch.compile(model, mode="reduce-overhead") if compiled else model
    loss_fn = nn.MSELoss(reduction="sum")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    for step in range(steps):
        if step == warmup:
            sync("cuda")
            start = time.perf_counter()
        loss = loss_fn(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    sync("cuda")
    return loss.item(), (time.perf_counter() - start) / (steps - warmup)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warmup = args.steps // 5  # compiling and graph capture happen in the first steps
    print(f"GPU {torch.cuda.get_device_name()}, torch {torch.__version__}, lightning {L.__version__}")
    print("\n| what | ms/step (median of %d) | final loss |\n|---|---|---|" % args.repeats)
    workdir = Path(tempfile.mkdtemp())
    for compiled in (False, True):
        runs = [plain(args.steps, compiled, warmup) for _ in range(args.repeats)]
        print(f"| plain loop, net {'compiled' if compiled else 'eager'} | "
              f"{statistics.median(s for _, s in runs) * 1e3:.3f} | {runs[0][0]:.6g} |", flush=True)
    for compiled in (False, True):
        size = make_size(64, 100, args.steps)
        size["logger.tensorboard.log_graph"] = "false"  # torch.jit.trace cannot trace a compiled net
        if compiled:
            size["+callbacks.compile._target_"] = "__main__.CompileNet"
        runs = [primer_fit(size, "cuda", warmup, Path(tempfile.mkdtemp(dir=workdir))) for _ in range(args.repeats)]
        print(f"| primer.train, net {'compiled' if compiled else 'eager'} | "
              f"{statistics.median(s for _, s in runs) * 1e3:.3f} | {runs[0][0]:.6g} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
