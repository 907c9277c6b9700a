"""`python -m primer.tutorial.autograd`: the primer's walk-through, numbers checked."""

import pytest
import torch

from primer.tutorial.autograd import my_relu_example, walk_through
from tests.conftest import run_cli


def test_walk_through_values_and_gradient():
    t = walk_through()
    assert torch.equal(t["y"], torch.full((2, 2), 3.0))
    assert torch.equal(t["z"], torch.full((2, 2), 27.0))
    assert t["out"].item() == 27.0
    assert torch.equal(t["x.grad"], torch.full((2, 2), 4.5))


def test_my_relu_example_blocks_the_gradient_of_negative_inputs():
    t = my_relu_example()
    assert torch.equal(t["MyReLU.apply(h)"], torch.tensor([[0.0, 0.0, 0.0, 1.5, 3.0]]))
    assert torch.equal(t["h.grad"], torch.tensor([[0.0, 0.0, 1.0, 1.0, 1.0]]))


@pytest.mark.slow
def test_command_names_the_tutorials_sections_and_prints_the_gradient(tmp_path):
    result = run_cli(module="primer.tutorial.autograd", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "== Gradient Calculation\n" in result.stdout and "== Custom Autograd Functions\n" in result.stdout
    assert "out = 27.0" in result.stdout
    assert "[[4.5000, 4.5000]," in result.stdout
