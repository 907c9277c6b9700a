"""Shared fixtures: compose the real conf/ with overrides, and run tiny real trainings into tmp_path."""

import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from primer.config import CONFIG_DIR, CONFIG_NAME

# Small enough that a training takes well under a second on a 2-core CPU.
TINY = ["trainer.max_steps=6", "trainer.log_every_n_steps=2", "data.input_dim=8", "model.hidden_dim=4"]


def compose_config(output_dir, overrides=()) -> DictConfig:
    """The config `python -m primer.train OVERRIDES` would run, writing into output_dir."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=[f"hydra.run.dir={output_dir}", *overrides], return_hydra_config=True)
    HydraConfig().set_config(cfg)  # what @hydra.main does before calling the task
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


@pytest.fixture
def make_config(tmp_path):
    def make(*overrides, subdir="run"):
        return compose_config(tmp_path / subdir, overrides)

    return make


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Runs `python -m primer.train ARGS` (or another entry point's main) in tmp_path, in this process:
    run(*args) -> (exit code, stdout, stderr)."""
    from primer import exits, train

    monkeypatch.chdir(tmp_path)
    for name in ("HYDRA_FULL_ERROR", exits.USER_FULL_ERROR, "PL_GLOBAL_SEED"):
        monkeypatch.delenv(name, raising=False)

    def run(*args, main=train.main, prog="primer.train"):
        monkeypatch.setattr(sys, "argv", [prog, *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as stop:
            code = stop.code or 0
        out, err = capsys.readouterr()
        return code, out, err

    return run
