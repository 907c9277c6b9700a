"""Shared fixtures: compose the real conf/ with overrides, and run tiny real trainings into tmp_path."""

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
