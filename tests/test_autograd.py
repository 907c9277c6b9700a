"""`python -m primer.autograd`: the primer's walk-through, numbers checked."""

import subprocess
import sys

import torch

from primer.autograd import walk_through


def test_walk_through_values_and_gradient():
    t = walk_through()
    assert torch.equal(t["y"], torch.full((2, 2), 3.0))
    assert torch.equal(t["z"], torch.full((2, 2), 27.0))
    assert t["out"].item() == 27.0
    assert torch.equal(t["x.grad"], torch.full((2, 2), 4.5))


def test_command_prints_the_gradient():
    result = subprocess.run([sys.executable, "-m", "primer.autograd"], capture_output=True, text=True, check=True)
    assert "out = 27.0" in result.stdout
    assert "[[4.5000, 4.5000]," in result.stdout
