"""How the overhead ratio changes as the matmuls grow: the FLOPs of a step, and a bare torch.mm for scale."""

import time

import torch

from benchmarks.plainloop import sync

DEFAULT_SIZES = "64x100,256x256,1024x1024,4096x4096"  # batch x hidden; input 1000, output 10 as in the primer
SCALE_FLOPS = 2e10  # training FLOPs per scale run: steps = SCALE_FLOPS / FLOPs per step, within [4, 500]


def train_flops(size: dict) -> float:
    """FLOPs of one step: forward 2N(D_in H + H D_out), backward 2N D_in H (dW1) + 4N H D_out (dW2, dh)."""
    n, d_in, h, d_out = (size[k] for k in ("data.batch_size", "data.input_dim", "model.hidden_dim", "data.output_dim"))
    return 4 * n * d_in * h + 6 * n * h * d_out


def mm_gflops(size: dict, device: str) -> float:
    """A bare torch.mm of the first layer's shape, (N, D_in) @ (D_in, H), repeated for ~0.3 s."""
    n, d_in, h = size["data.batch_size"], size["data.input_dim"], size["model.hidden_dim"]
    a, b = torch.randn(n, d_in, device=device), torch.randn(d_in, h, device=device)
    torch.mm(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.3:
        for _ in range(10):
            torch.mm(a, b)
        sync(device)
        count += 10
    return 2 * n * d_in * h * count / (time.perf_counter() - start) / 1e9

