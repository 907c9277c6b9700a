"""A toy Hydra app for the Optuna sweeper's own tests: no training, one or two objectives of x and y.

    python tests/optuna_app.py -m hydra/sweeper=primer_optuna 'x=interval(-4,4)' ...
"""

import hydra
from hydra.core.config_store import ConfigStore

ConfigStore.instance().store(name="toy", node={"x": 0.0, "y": 0.0, "objectives": 1})


@hydra.main(version_base="1.3", config_path=None, config_name="toy")
def objective(cfg):
    first = (cfg.x - 2) ** 2 + cfg.y
    return first if cfg.objectives == 1 else [first, abs(cfg.x)]


if __name__ == "__main__":
    objective()
