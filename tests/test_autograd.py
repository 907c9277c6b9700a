"""`python -m primer.autograd`: the primer's walk-through, numbers checked."""

import pytest
import torch

from primer.autograd import walk_through
from tests.conftest import run_cli


def test_walk_through_values_and_gradient():
    t = walk_through()
    assert torch.equal(t["y"], torch.full((2, 2), 3.0))
    assert torch.equal(t["z"], torch.full((2, 2), 27.0))
    assert t["out"].item() == 27.0
    assert torch.equal(t["x.grad"], torch.full((2, 2), 4.5))


@pytest.mark.slow
def test_command_prints_the_gradient(tmp_path):
    result = run_cli(module="primer.autograd", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "out = 27.0" in result.stdout
    assert "[[4.5000, 4.5000]," in result.stdout
