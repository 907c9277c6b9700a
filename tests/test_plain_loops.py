"""The tutorial's training sections as plain-PyTorch loops (primer.tutorial.plain_loops), held to the Lightning runs."""

import ast
import inspect

import pytest
import torch

import primer.tutorial.plain_loops as plain_loops
from primer.tutorial.plain_loops import SECTIONS, class_based_declaration, main, tutorial_data
from primer.cli.train import fit_run

# Seed sizes, fewer steps: enough for every loss to fall several decades.
STEPS = 200
PAIRS = {**{name: (f"experiment={name}", loop) for name, (loop, _) in SECTIONS.items()},
         "custom_relu": ("model=custom_relu",
                         lambda x, y, steps: class_based_declaration(x, y, steps=steps, relu="custom"))}


def test_plain_loops_import_no_lightning_and_no_hydra():
    imported = set()
    for node in ast.walk(ast.parse(inspect.getsource(plain_loops))):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported == {"argparse", "sys", "collections", "torch", "primer"}


def test_hand_derived_loop_follows_the_autograd_loop():
    """Manual Gradient Computation and FeedForwardNet: one trajectory, the gradients found two ways."""
    x, y = tutorial_data(batch_size=8, input_dim=12, output_dim=3, dtype=torch.float64)
    by_hand = SECTIONS["1_manual_gradient_computation"][0](x, y, hidden_dim=6, lr=1e-3, steps=20)
    by_autograd = SECTIONS["2_feed_forward_net"][0](x, y, hidden_dim=6, lr=1e-3, steps=20)
    assert by_hand[-1] < by_hand[0] / 10  # it trains, so the comparison means something
    assert by_hand == pytest.approx(by_autograd, rel=1e-12)


@pytest.mark.slow  # seed sizes, 200 steps, in float64: a few seconds a pair
@pytest.mark.parametrize("name", PAIRS)
def test_plain_loop_and_lightning_end_at_the_same_loss(make_config, name):
    """float64, so that the tutorial's `w -= lr * grad` (two roundings) and torch.optim.SGD's
    `w.add_(grad, alpha=-lr)` (one) agree: in float32 the raw-weight nets end ~1% apart at ~1e-5."""
    preset, loop = PAIRS[name]
    metrics, _ = fit_run(make_config(preset, f"trainer.max_steps={STEPS}", "trainer.precision=64-true", "logger=none",
                                "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"))
    x, y = tutorial_data(dtype=torch.float64)
    losses = loop(x, y, steps=STEPS)
    assert len(losses) == STEPS and losses[-1] < losses[0] / 1e3
    assert losses[-1] == pytest.approx(metrics["train/loss"], rel=1e-5)


def test_the_plain_loops_command_has_help_and_names_the_sections_it_knows(capsys):
    with pytest.raises(SystemExit) as asked:
        main(["--help"])
    assert asked.value.code == 0 and "SECTION" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main(["nope"])
    err = capsys.readouterr().err
    assert refused.value.code == 2 and "no such section: nope; choose one of 1_manual_gradient_computation" in err
