"""The tutorial's two sections before any training: python -m primer.tutorial.autograd

Gradient Calculation: x is a 2x2 tensor of ones that records operations on it; then
    y = x + 2,  z = 3 y^2,  out = mean(z)
and out.backward() fills x.grad with d(out)/dx. By hand, for each of the 4 entries:
    out = (1/4) sum 3 (x_i + 2)^2   so   d(out)/dx_i = (3/2)(x_i + 2) = 4.5 at x_i = 1.

Custom Autograd Functions: MyReLU (primer.tutorial.nets) passes the upstream gradient where its input
was >= 0 and blocks it elsewhere, as clamp(min=0) does.
"""

import torch

from primer.tutorial.nets import MyReLU

SECTIONS = ("Gradient Calculation", "Custom Autograd Functions")  # the tutorial's headings


def walk_through() -> dict[str, torch.Tensor]:
    """Runs the Gradient Calculation example and returns every tensor it prints, x.grad included."""
    x = torch.ones(2, 2, requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean()
    out.backward()
    return {"x": x, "y": y, "z": z, "out": out, "x.grad": x.grad}


def my_relu_example() -> dict[str, torch.Tensor]:
    """MyReLU on a row with negative, zero and positive entries, and the gradient of its sum."""
    h = torch.tensor([[-2.0, -0.5, 0.0, 1.5, 3.0]], requires_grad=True)
    out = MyReLU.apply(h)
    out.sum().backward()
    return {"h": h, "MyReLU.apply(h)": out, "h.grad": h.grad}


def main() -> None:
    print(f"== {SECTIONS[0]}\n")
    for name, value in walk_through().items():
        print(f"{name} = {value}\n")
    print("By hand: d(out)/dx_i = 3/4 * 2 * (x_i + 2) = 4.5 for x_i = 1, as x.grad shows.\n")
    print(f"== {SECTIONS[1]}\n")
    for name, value in my_relu_example().items():
        print(f"{name} = {value}\n")
    print("MyReLU.backward passes the gradient where h >= 0 and zeroes it where h < 0.")


if __name__ == "__main__":
    main()
