"""The experiment presets and the sweeps the pre-flight check expands, composed from the real conf/."""

from pathlib import Path

import pytest

from primer.config import CONFIG_DIR
from tests.conftest import MODELS, PRIMER_LR

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
# The tutorial's training sections, in its order, and the model each trains.
TUTORIAL_SECTIONS = {
    "1_manual_gradient_computation": "manual",  # Simple Model > Manual Gradient Computation
    "2_feed_forward_net": "autograd",  # the class FeedForwardNet, gradients by autograd
    "3_applying_custom_function": "raw_custom_relu",  # MyReLU.apply(x.mm(self.w1)).mm(self.w2)
    "4_sequential_model": "sequential",  # Model Declarations > Sequential Model
    "5_class_based_declaration": "two_layer",  # TwoLayerNet, MSELoss(sum), SGD lr 1e-4
}


def test_the_experiments_are_the_tutorials_sections_in_its_order():
    assert EXPERIMENTS == list(TUTORIAL_SECTIONS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_trains_its_sections_net_with_the_tutorials_dims_lr_and_loss(make_config, experiment):
    cfg = make_config(f"experiment={experiment}")
    model = TUTORIAL_SECTIONS[experiment]
    assert cfg.model == make_config(f"model={model}").model
    assert cfg.hydra.runtime.choices.optimizer == "sgd" and cfg.optimizer.momentum == 0
    assert cfg.optimizer.lr == PRIMER_LR[model]
    assert (cfg.data.batch_size, cfg.data.input_dim, cfg.model.hidden_dim, cfg.data.output_dim) == (64, 1000, 100, 10)
    assert (cfg.data.target, cfg.trainer.max_steps) == ("random", 500)


@pytest.mark.parametrize("model", MODELS)
def test_a_model_alone_carries_the_tutorials_lr(make_config, model):
    assert make_config(f"model={model}").optimizer.lr == PRIMER_LR[model]


@pytest.mark.parametrize("overrides, lr", [
    (["model=manual", "optimizer.lr=2e-6"], 2e-6),  # a typed lr wins over the model's
    (["optimizer.lr=2e-6", "model=manual"], 2e-6),  # wherever it stands on the line
    (["model=manual", "optimizer=adam"], 1e-3),  # another optimizer brings its own lr
    (["experiment=1_manual_gradient_computation", "optimizer.lr=2e-6"], 2e-6),
])
def test_an_optimizer_override_wins_over_the_models_lr(make_config, overrides, lr):
    assert make_config(*overrides).optimizer.lr == lr


def test_preflight_check_expands_a_glob_over_experiments(cli, monkeypatch):
    import primer.checks.preflight
    from primer.exits import BadConfig, EndCommand

    seen, check = [], primer.checks.preflight.check_job

    def record(config, multirun):
        check(config, multirun)
        seen.append(config)
        if len(seen) == len(EXPERIMENTS):  # all checked: stop before any job runs
            raise EndCommand(BadConfig("checked"))

    monkeypatch.setattr(primer.checks.preflight, "check_job", record)
    code, _, err = cli("-m", "experiment=glob(*)", "trainer.max_steps=6")
    assert code == 2 and err == "error: checked\n"
    assert [job.hydra.runtime.choices.experiment for job in seen] == list(TUTORIAL_SECTIONS)  # the tutorial's order
    assert all(job.trainer.max_steps == 6 for job in seen)


@pytest.mark.parametrize("args, message", [
    (["-m", "experiment=glob(*)", "optimizer.lr=1e-4,-1"], "optimizer.lr=-1: must be a number, 0 or more"),
    (["-m", "experiment=nope"],
     "experiment=nope: no such experiment; choose one of 1_manual_gradient_computation, 2_feed"),
    (["-m", "hparams_search=optuna", "trainer.max_steps=0"], "trainer.max_steps=0: must be a positive integer"),
])
def test_preflight_check_stops_a_bad_sweep_before_any_job(cli, tmp_path, args, message):
    code, _, err = cli(*args)
    assert code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1, err[-2000:]
    assert not (tmp_path / "outputs").exists()


def test_optuna_preset_passes_the_preflight_check(cli, monkeypatch):
    import primer.checks.preflight
    from primer.exits import BadConfig, EndCommand

    checked, check = [], primer.checks.preflight.check_job

    def record(config, multirun):
        check(config, multirun)  # the real check: it would end the command on a bad config
        checked.append(config)
        raise EndCommand(BadConfig("checked"))  # stop before the search starts

    monkeypatch.setattr(primer.checks.preflight, "check_job", record)
    code, _, err = cli("-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2")
    assert code == 2 and err == "error: checked\n"
    assert [c.hydra.sweeper.n_trials for c in checked] == [2]  # the trials' shared config, checked once


def test_optuna_search_without_its_extra_says_what_to_install(cli, monkeypatch):
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    Plugins.instance()  # registers the installed plugins' configs, the Optuna sweeper's among them
    # what an install without the `sweeps` extra (Optuna) looks like to Hydra: no hydra/sweeper=primer_optuna
    monkeypatch.delitem(ConfigStore.instance().repo["hydra"]["sweeper"], "primer_optuna.yaml")
    code, _, err = cli("-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2")
    assert code == 2
    assert err == ("error: hydra/sweeper=primer_optuna: the Optuna sweeper is not installed; "
                   "pip install -e '.[sweeps]'\n")


def test_a_single_run_composes_its_config_once(cli, monkeypatch):
    """The checks read the config Hydra composed for the run: no second compose at every start."""
    import hydra

    composes = []
    monkeypatch.setattr(hydra, "compose", lambda *a, **k: composes.append(a) or pytest.fail("composed again"))
    code, _, err = cli("optimizer.lr=-1")  # checked, rejected: the run stops right after the checks
    assert code == 2 and err == "error: optimizer.lr=-1: must be a number, 0 or more\n"
    assert composes == []
