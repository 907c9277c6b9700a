"""The primer's autograd walk-through: python -m primer.autograd

x is a 2x2 tensor of ones that records operations on it; then
    y = x + 2,  z = 3 y^2,  out = mean(z)
and out.backward() fills x.grad with d(out)/dx. By hand, for each of the 4 entries:
    out = (1/4) sum 3 (x_i + 2)^2   so   d(out)/dx_i = (3/2)(x_i + 2) = 4.5 at x_i = 1.
"""

import torch


def walk_through() -> dict[str, torch.Tensor]:
    """Runs the example and returns every tensor it prints, x.grad included."""
    x = torch.ones(2, 2, requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean()
    out.backward()
    return {"x": x, "y": y, "z": z, "out": out, "x.grad": x.grad}


def main() -> None:
    for name, value in walk_through().items():
        print(f"{name} = {value}\n")
    print("By hand: d(out)/dx_i = 3/4 * 2 * (x_i + 2) = 4.5 for x_i = 1, as x.grad shows.")


if __name__ == "__main__":
    main()
