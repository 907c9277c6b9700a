"""The primer's hand-written training loop: the baseline that `benchmarks.bench` holds primer to.

    python -m benchmarks.plainloop    # the whole-process baseline: import torch, train 500 steps, print the loss

Same data, net, loss and optimizer as `python -m primer.train` at the same seed: x and y from a
generator seeded with `seed` (as primer.run.data makes them), the net initialized after
torch.manual_seed(seed) (as Lightning's seed_everything leaves it), SGD on the summed loss.
"""

import time

import torch
from torch import nn

from primer.tutorial.nets import TwoLayerNet


def plain_loop(
    batch_size: int = 64,
    input_dim: int = 1000,
    hidden_dim: int = 100,
    output_dim: int = 10,
    steps: int = 500,
    lr: float = 1e-4,
    seed: int = 0,
    device: str = "cpu",
    warmup: int = 0,
    clock=time.perf_counter,
) -> tuple[float, float]:
    """Trains for `steps` steps; returns (loss of the last step, seconds per step after `warmup` steps)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, input_dim, generator=gen).to(device)  # (N, D_in)
    y = torch.randn(batch_size, output_dim, generator=gen).to(device)  # (N, D_out)
    torch.manual_seed(seed)
    model = TwoLayerNet(input_dim, hidden_dim, output_dim).to(device)
    loss_fn = nn.MSELoss(reduction="sum")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)

    start = clock()
    for step in range(steps):
        if step == warmup:
            sync(device)
            start = clock()
        y_pred = model(x)
        loss = loss_fn(y_pred, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    sync(device)  # the GPU's queue drains only here: no per-step host sync
    return loss.item(), (clock() - start) / (steps - warmup)


def sync(device: str | torch.device) -> None:
    """Waits for the GPU's queued work, so that a clock reading counts it; nothing on a CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    print(f"loss {plain_loop()[0]:.6g}")
