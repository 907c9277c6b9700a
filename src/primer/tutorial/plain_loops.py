"""Every training section of the tutorial as a plain-PyTorch loop, written the way the tutorial writes it.

    python -m primer.tutorial.plain_loops                                # every section, losses at t = 99, ..., 499
    python -m primer.tutorial.plain_loops 1_manual_gradient_computation  # one section (the experiment preset's name)

Each loop trains the same net, on the same data, from the same seed as
`python -m primer.train experiment=<section>`, so the two can be read side by side: primer's
LightningModule (primer.run.system.Regression) hides this loop behind trainer.fit. The tutorial's bugs are
not copied: every loop calls backward and zeroes its gradients, and nn loops step their optimizer.
No Lightning and no Hydra here.

Data and init follow primer.train: x and y from a generator seeded with `seed` (as primer.run.data
makes them), the weights drawn after torch.manual_seed(seed) (as Lightning's seed_everything
leaves the global generator).
"""

import argparse
import sys
from collections.abc import Callable

import torch
from torch import nn

from primer.tutorial.nets import FeedForwardNet, TwoLayerNet, sequential_net

N, D_IN, H, D_OUT = 64, 1000, 100, 10  # batch_size, input_dim, hidden_dim, output_dim: the tutorial's
STEPS = 500


def loss_fn(y: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """The tutorial's summed squared error."""
    return (y_pred - y).pow(2).sum()


def tutorial_data(seed: int = 0, batch_size: int = N, input_dim: int = D_IN, output_dim: int = D_OUT,
              dtype: torch.dtype = torch.float32):
    """x (N, D_in) and y (N, D_out), standard normal and unrelated, as `data=random` draws them
    (in float32, then cast to `dtype`, as trainer.precision=64-true casts the batch)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, input_dim, generator=gen)
    y = torch.randn(batch_size, output_dim, generator=gen)
    return x.to(dtype), y.to(dtype)


def manual_gradient_computation(x, y, seed: int = 0, hidden_dim: int = H, lr: float = 1e-6, steps: int = STEPS):
    """Raw weights, gradients derived by hand, `w -= lr * grad`. Returns the loss of every step.
    (Every loop here trains in x's dtype, its weights drawn in float32 first, as primer.train draws them.)"""
    torch.manual_seed(seed)
    w1 = torch.randn(x.shape[1], hidden_dim).to(x.dtype)  # (D_in, H)
    w2 = torch.randn(hidden_dim, y.shape[1]).to(x.dtype)  # (H, D_out)
    losses = []
    for t in range(steps):
        h = x.mm(w1)  # (N, H)
        h_relu = h.clamp(min=0)
        y_pred = h_relu.mm(w2)  # (N, D_out)
        losses.append(loss_fn(y, y_pred).item())

        grad_y_pred = 2.0 * (y_pred - y)  # dL/dy_pred
        grad_w2 = h_relu.t().mm(grad_y_pred)  # dL/dw2
        grad_h = grad_y_pred.mm(w2.t())  # dL/dh_relu ...
        grad_h[h < 0] = 0  # ... is dL/dh where h >= 0
        grad_w1 = x.t().mm(grad_h)  # dL/dw1

        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
    return losses


def feed_forward_net(x, y, seed: int = 0, hidden_dim: int = H, lr: float = 1e-6, steps: int = STEPS,
                     relu: str = "clamp"):
    """FeedForwardNet: the same raw weights, gradients by autograd, the update still by hand.
    relu="custom" is "Applying Custom Function" (MyReLU.apply)."""
    torch.manual_seed(seed)
    model = FeedForwardNet(x.shape[1], hidden_dim, y.shape[1], relu=relu).to(x.dtype)
    losses = []
    for t in range(steps):
        loss = loss_fn(y, model(x))
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            for w in (model.w1, model.w2):
                w -= lr * w.grad
                w.grad.zero_()
    return losses


def applying_custom_function(x, y, seed: int = 0, hidden_dim: int = H, lr: float = 1e-6, steps: int = STEPS):
    """FeedForwardNet whose ReLU is MyReLU.apply."""
    return feed_forward_net(x, y, seed, hidden_dim, lr, steps, relu="custom")


def nn_loop(model: nn.Module, x, y, lr: float = 1e-4, steps: int = STEPS):
    """The tutorial's class-based loop: MSELoss(reduction='sum') and SGD, with the backward and step it leaves out."""
    model = model.to(x.dtype)
    criterion = nn.MSELoss(reduction="sum")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for t in range(steps):
        loss = criterion(model(x), y)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def sequential_model(x, y, seed: int = 0, hidden_dim: int = H, lr: float = 1e-4, steps: int = STEPS):
    """nn.Sequential(Linear, ReLU, Linear), trained by the class-based loop (the tutorial shows no loop for it)."""
    torch.manual_seed(seed)
    return nn_loop(sequential_net(x.shape[1], hidden_dim, y.shape[1]), x, y, lr, steps)


def class_based_declaration(x, y, seed: int = 0, hidden_dim: int = H, lr: float = 1e-4, steps: int = STEPS,
                            relu: str = "clamp"):
    """TwoLayerNet (relu="custom": with MyReLU, primer's model=custom_relu)."""
    torch.manual_seed(seed)
    return nn_loop(TwoLayerNet(x.shape[1], hidden_dim, y.shape[1], relu=relu), x, y, lr, steps)


# experiment preset -> (its loop, the model= it trains)
SECTIONS: dict[str, tuple[Callable, str]] = {
    "1_manual_gradient_computation": (manual_gradient_computation, "manual"),
    "2_feed_forward_net": (feed_forward_net, "autograd"),
    "3_applying_custom_function": (applying_custom_function, "raw_custom_relu"),
    "4_sequential_model": (sequential_model, "sequential"),
    "5_class_based_declaration": (class_based_declaration, "two_layer"),
}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m primer.tutorial.plain_loops", description=__doc__.split("\n")[0])
    parser.add_argument("sections", nargs="*", metavar="SECTION", help=f"one of {', '.join(SECTIONS)} (default: all)")
    names = parser.parse_args(argv).sections or list(SECTIONS)
    if unknown := [n for n in names if n not in SECTIONS]:
        parser.error(f"no such section: {unknown[0]}; choose one of {', '.join(SECTIONS)}")
    x, y = tutorial_data()
    for name in names:
        print(name)
        losses = SECTIONS[name][0](x, y)
        for t in range(99, len(losses), 100):  # where the tutorial prints
            print(f"  t={t}  loss {losses[t]:.4g}")


if __name__ == "__main__":
    main(sys.argv[1:])
