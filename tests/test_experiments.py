"""The experiment presets and the sweeps the pre-flight check expands, composed from the real conf/."""

from pathlib import Path

import pytest

from primer.config import CONFIG_DIR, BadConfig, check_command_line
from tests.conftest import MODELS, PRIMER_LR

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))


def test_there_is_one_experiment_per_primer_section():
    assert EXPERIMENTS == sorted(MODELS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_sets_its_model_and_the_primers_lr(make_config, experiment):
    cfg = make_config(f"experiment={experiment}")
    assert cfg.model == make_config(f"model={experiment}").model
    assert cfg.hydra.runtime.choices.optimizer == "sgd"
    assert cfg.optimizer.lr == PRIMER_LR[experiment]


def test_an_override_after_the_experiment_wins(make_config):
    assert make_config("experiment=manual", "optimizer.lr=2e-6").optimizer.lr == 2e-6


def test_preflight_check_expands_a_glob_over_experiments(monkeypatch):
    checked = []
    monkeypatch.setattr("primer.config.check_values", lambda cfg, overrides, base: checked.append(overrides))
    check_command_line(["-m", "experiment=glob(*)", "trainer.max_steps=6"])
    assert checked == [[f"experiment={e}", "trainer.max_steps=6"] for e in EXPERIMENTS]


@pytest.mark.parametrize("args, message", [
    (["-m", "experiment=glob(*)", "optimizer.lr=1e-4,-1"], "optimizer.lr=-1: must be a positive number"),
    (["-m", "experiment=nope"], "experiment=nope: no such experiment; choose one of autograd, custom_relu"),
    (["-m", "hparams_search=optuna", "trainer.max_steps=0"], "trainer.max_steps=0: must be a positive integer"),
])
def test_preflight_check_stops_a_bad_sweep_before_any_job(args, message):
    with pytest.raises(BadConfig, match=message.replace("(", r"\(")):
        check_command_line(args)


def test_optuna_preset_passes_the_preflight_check(monkeypatch):
    import primer.config

    checked, check_values = [], primer.config.check_values
    monkeypatch.setattr(primer.config, "check_values", lambda cfg, overrides, base: checked.append(overrides)
                        or check_values(cfg, overrides, base))
    check_command_line(["-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2"])  # raises BadConfig if not
    assert checked == [["hparams_search=optuna", "hydra.sweeper.n_trials=2"]]  # the trials' shared config, checked


def test_optuna_search_without_its_extra_says_what_to_install(monkeypatch):
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    Plugins.instance()  # registers the installed plugins' configs, the Optuna sweeper's among them
    # what an install without the `sweeps` extra looks like to Hydra: no hydra/sweeper=optuna
    monkeypatch.delitem(ConfigStore.instance().repo["hydra"]["sweeper"], "optuna.yaml")
    with pytest.raises(BadConfig, match=r"^hydra/sweeper=optuna: the Optuna sweeper is not installed; "
                                        r"pip install -e '\.\[sweeps\]'$"):
        check_command_line(["-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2"])


@pytest.mark.parametrize("args, composed", [
    ([], [[]]),
    (["hydra.run.dir=/tmp/x"], [["hydra.run.dir=/tmp/x"]]),  # Hydra's own keys: the run is its own base
    (["model=sequential", "optimizer.lr=1e-3"], [["model=sequential", "optimizer.lr=1e-3"], ["model=sequential"]]),
    (["-m", "optimizer.lr=1e-4,1e-3"], [[], ["optimizer.lr=0.0001"], ["optimizer.lr=0.001"]]),
])
def test_preflight_check_composes_each_distinct_config_once(monkeypatch, args, composed):
    """A compose costs ~0.1 s of every command's start-up (benchmarks/PROFILE.md)."""
    import primer.config

    calls, compose = [], primer.config._compose
    monkeypatch.setattr(primer.config, "_compose", lambda overrides: calls.append(overrides) or compose(overrides))
    check_command_line(args)
    assert calls == composed
