"""The primer's networks in plain PyTorch: no Lightning, no Hydra.

Dimensions, named once and used everywhere:
    N        batch size            (data.batch_size)
    D_in     input features        (data.input_dim)
    H        hidden units          (model.hidden_dim)
    D_out    output features       (data.output_dim)

Every net maps x of shape (N, D_in) to a prediction of shape (N, D_out) through
one hidden ReLU layer; they differ in how that is written and how gradients are found.
"""

import torch
from torch import nn


class MyReLU(torch.autograd.Function):
    """ReLU as a hand-written autograd Function.

    forward keeps its input (via ctx.save_for_backward) because the gradient needs to know
    where the input was negative; backward passes the upstream gradient through where
    input >= 0 and zeroes it elsewhere, exactly as clamp(min=0) does.
    """

    @staticmethod
    def forward(ctx, input: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(input)
        return input.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        (input,) = ctx.saved_tensors
        return grad_output.masked_fill(input < 0, 0)


RELUS = ("clamp", "custom")  # h.clamp(min=0), or MyReLU.apply(h)


def relu(h: torch.Tensor, kind: str) -> torch.Tensor:
    return MyReLU.apply(h) if kind == "custom" else h.clamp(min=0)


def _checked_relu(kind: str) -> str:
    if kind not in RELUS:
        raise ValueError(f"relu must be 'clamp' or 'custom', got {kind!r}")
    return kind


class TwoLayerNet(nn.Module):
    """Linear -> ReLU -> Linear, with the ReLU as clamp(min=0) or the custom MyReLU."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, relu: str = "clamp"):
        super().__init__()
        self.relu = _checked_relu(relu)
        self.linear1 = nn.Linear(input_dim, hidden_dim)
        self.linear2 = nn.Linear(hidden_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear1(x)  # (N, H)
        return self.linear2(relu(h, self.relu))  # (N, D_out)


def sequential_net(input_dim: int, hidden_dim: int, output_dim: int) -> nn.Sequential:
    """The same network as a layer list; the ReLU between the layers is what makes it two layers."""
    return nn.Sequential(
        nn.Linear(input_dim, hidden_dim),
        nn.ReLU(),
        nn.Linear(hidden_dim, output_dim),
    )


class FeedForwardNet(nn.Module):
    """Two raw weight matrices, no bias: y_pred = relu(x @ w1) @ w2.

    The weights start as standard normals, as in the tutorial, so the summed squared error
    starts near 1e7 and the tutorial's learning rate for this net is 1e-6. relu="custom" is the
    tutorial's "Applying Custom Function": MyReLU.apply(x.mm(w1)).mm(w2).
    """

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, relu: str = "clamp"):
        super().__init__()
        self.relu = _checked_relu(relu)
        self.w1 = nn.Parameter(torch.randn(input_dim, hidden_dim))  # (D_in, H)
        self.w2 = nn.Parameter(torch.randn(hidden_dim, output_dim))  # (H, D_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return relu(x.mm(self.w1), self.relu).mm(self.w2)


class HandGradientNet(FeedForwardNet):
    """FeedForwardNet that also derives its own gradients, with no autograd (its ReLU is clamp).

    For the summed squared error L = sum((y_pred - y)^2), by the chain rule:
        dL/dy_pred = 2 (y_pred - y)                      (N, D_out)
        dL/dw2     = h_relu^T  dL/dy_pred                 (H, D_out)
        dL/dh      = dL/dy_pred w2^T, zeroed where h < 0  (N, H)
        dL/dw1     = x^T dL/dh                            (D_in, H)
    """

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int):
        super().__init__(input_dim, hidden_dim, output_dim)

    @torch.no_grad()
    def loss_and_gradients(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Returns (y_pred, summed squared error, (grad_w1, grad_w2))."""
        h = x.mm(self.w1)  # (N, H)
        h_relu = h.clamp(min=0)
        y_pred = h_relu.mm(self.w2)  # (N, D_out)
        diff = y_pred - y
        loss = diff.pow(2).sum()
        grad_y_pred = 2.0 * diff
        grad_w2 = h_relu.t().mm(grad_y_pred)
        grad_h = grad_y_pred.mm(self.w2.t()).masked_fill_(h < 0, 0)
        grad_w1 = x.t().mm(grad_h)
        return y_pred, loss, (grad_w1, grad_w2)
