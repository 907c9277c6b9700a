"""The experiment presets and the sweeps the pre-flight check expands, composed from the real conf/."""

from pathlib import Path

import pytest

from primer.config import CONFIG_DIR
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


def test_preflight_check_expands_a_glob_over_experiments(cli, monkeypatch):
    import primer.preflight
    from primer.exits import BadConfig, EndCommand

    seen, check = [], primer.preflight._check_or_end

    def record(config, multirun):
        check(config, multirun)
        seen.append(config)
        if len(seen) == len(EXPERIMENTS):  # all checked: stop before any job runs
            raise EndCommand(BadConfig("checked"))

    monkeypatch.setattr(primer.preflight, "_check_or_end", record)
    code, _, err = cli("-m", "experiment=glob(*)", "trainer.max_steps=6")
    assert code == 2 and err == "error: checked\n"
    assert [job.hydra.runtime.choices.experiment for job in seen] == EXPERIMENTS
    assert all(job.trainer.max_steps == 6 for job in seen)


@pytest.mark.parametrize("args, message", [
    (["-m", "experiment=glob(*)", "optimizer.lr=1e-4,-1"], "optimizer.lr=-1: must be a positive number"),
    (["-m", "experiment=nope"], "experiment=nope: no such experiment; choose one of autograd, custom_relu"),
    (["-m", "hparams_search=optuna", "trainer.max_steps=0"], "trainer.max_steps=0: must be a positive integer"),
])
def test_preflight_check_stops_a_bad_sweep_before_any_job(cli, tmp_path, args, message):
    code, _, err = cli(*args)
    assert code == 2 and err.startswith(f"error: {message}") and err.count("\n") == 1, err[-2000:]
    assert not (tmp_path / "outputs").exists()


def test_optuna_preset_passes_the_preflight_check(cli, monkeypatch):
    import primer.preflight
    from primer.exits import BadConfig, EndCommand

    checked, check = [], primer.preflight._check_or_end

    def record(config, multirun):
        check(config, multirun)  # the real check: it would end the command on a bad config
        checked.append(config)
        raise EndCommand(BadConfig("checked"))  # stop before the search starts

    monkeypatch.setattr(primer.preflight, "_check_or_end", record)
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
    assert err == "error: hydra/sweeper=primer_optuna: the Optuna sweeper is not installed; pip install -e '.[sweeps]'\n"


def test_a_single_run_composes_its_config_once(cli, monkeypatch):
    """The checks read the config Hydra composed for the run: no second compose at every start."""
    import hydra

    composes = []
    monkeypatch.setattr(hydra, "compose", lambda *a, **k: composes.append(a) or pytest.fail("composed again"))
    code, _, err = cli("optimizer.lr=0")  # checked, rejected: the run stops right after the checks
    assert code == 2 and err == "error: optimizer.lr=0: must be a positive number\n"
    assert composes == []
