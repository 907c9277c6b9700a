"""`from primer import fit, evaluate`: the command line's runs and checks from Python, called the way
lightning-hydra-template's tests call `fit(cfg)`, with no Hydra runtime set up by the caller."""

import json
import logging

import lightning as L
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from primer import evaluate, fit
from primer.config import CONFIG_DIR, CONFIG_NAME
from primer.exits import BadConfig
from primer.run.system import Regression
from tests.conftest import QUIET, TINY


@pytest.fixture(autouse=True)
def no_hydra_runtime(monkeypatch):
    """Each test starts as a notebook does: no HydraConfig set and no logging configured (other tests set them:
    an in-process command line leaves Hydra's handlers on the root logger, one of them a run dir's train.log)."""
    HydraConfig.instance().cfg = None
    monkeypatch.setattr(logging.getLogger(), "handlers", [])


def test_fit_takes_overrides_and_returns_the_metrics_and_the_objects(tmp_path):
    metrics, objects = fit([*TINY, *QUIET, "model=custom_relu"], output_dir=tmp_path / "run")
    assert metrics == json.loads((tmp_path / "run/metrics.json").read_text())
    assert isinstance(objects["trainer"], L.Trainer) and objects["trainer"].global_step == 6
    assert isinstance(objects["system"], Regression) and type(objects["system"].net).__name__ == "TwoLayerNet"
    assert objects["datamodule"].hparams.input_dim == 8
    assert objects["cfg"].model.relu == "custom"
    assert (tmp_path / "run/checkpoints/final.ckpt").is_file()
    assert "model=custom_relu" in (tmp_path / "run/.hydra/overrides.yaml").read_text()
    assert not HydraConfig.initialized()  # as before it: a later evaluate or check reads none of this fit's overrides


def test_fit_with_seed_null_records_the_drawn_seed_in_its_run_config_as_the_command_line_does(tmp_path):
    _, objects = fit([*TINY, *QUIET, "seed=null"], output_dir=tmp_path / "run")
    stored = OmegaConf.load(tmp_path / "run/.hydra/config.yaml")
    assert isinstance(objects["cfg"].seed, int) and stored.seed == objects["cfg"].seed


def test_fit_that_diverges_leaves_the_failure_txt_the_command_line_leaves(tmp_path):
    from primer.exits import Diverged

    with pytest.raises(Diverged):
        fit([*TINY, *QUIET, "optimizer.lr=1e10", "trainer.log_every_n_steps=1"], output_dir=tmp_path / "run")
    assert (tmp_path / "run/failure.txt").read_text().startswith("Diverged: training diverged: train/loss is inf")


def test_fit_takes_a_config_composed_without_hydra_runtime(tmp_path):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=[*TINY, *QUIET])  # no return_hydra_config: the template's way
    metrics, objects = fit(cfg, output_dir=tmp_path / "run")
    same, _ = fit([*TINY, *QUIET], output_dir=tmp_path / "again")
    assert metrics == same  # seeded: the same config trains to the same bits
    assert objects["cfg"].paths.output_dir == str((tmp_path / "run").absolute())


@pytest.mark.parametrize("overrides, line", [
    (["data.batch_size=0"], "data.batch_size=0"),
    (["trainer.max_stepz=3"], "trainer.max_stepz: no such key; did you mean trainer.max_steps?"),
    (["model=nope"], "model=nope: no such model"),
    (["trainer.precision=17"], "trainer.precision"),
    (["trainer.accelerator=mps"], "trainer: MisconfigurationException"),  # from Lightning, once the dir exists
])
def test_fit_runs_the_command_lines_checks(tmp_path, cli, monkeypatch, overrides, line):
    monkeypatch.setattr(HydraConfig.instance(), "cfg", callers := OmegaConf.create({"hydra": {}}))  # a Hydra app's
    with pytest.raises(BadConfig) as refused:
        fit(overrides, output_dir=tmp_path / "run")
    assert HydraConfig.instance().cfg is callers  # given back however fit ends
    code, _, err = cli(*overrides)
    assert code == 2 and err.strip() == f"error: {refused.value}"  # the same line as the command line's
    assert str(refused.value).startswith(line)
    assert not (tmp_path / "run").exists()


def test_evaluate_scores_a_checkpoint_with_its_stored_config_or_a_given_one(tmp_path):
    metrics, _ = fit([*TINY, *QUIET], output_dir=tmp_path / "run")
    checkpoint = tmp_path / "run/checkpoints/final.ckpt"
    scores, objects = evaluate(checkpoint)
    assert scores["val/loss"] == pytest.approx(metrics["val/loss"], rel=1e-6)  # data=random: the same batch
    assert isinstance(objects["system"], Regression)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=[*TINY, *QUIET, "data.seed=1"])
    other, objects = evaluate(checkpoint, cfg)
    assert objects["cfg"].data.seed == 1 and other["val/loss"] != scores["val/loss"]
    assert evaluate(checkpoint, ["data.seed=1"])[0] == other  # the same as overriding the stored config
    with pytest.raises(BadConfig, match="the weights fix the model"):
        evaluate(checkpoint, ["model.hidden_dim=8"])


def test_the_command_module_and_the_api_function_have_names_of_their_own(tmp_path):
    """`import primer.train` (what primer-train does) binds `primer.train` to the command's module; the Python
    API, `primer.fit`, stays what it is: the same checks, then the same run."""
    import types

    import primer
    import primer.train

    assert isinstance(primer.train, types.ModuleType) and callable(primer.train.main)
    with pytest.raises(BadConfig, match="trainer.max_stepz: no such key"):
        primer.fit(["trainer.max_stepz=3"], output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_fit_writes_train_log_as_the_command_line_does_and_shows_only_progress_and_results(tmp_path, capfd):
    """Hydra's job logging for the run (train.log in the run dir), Lightning's set-up lines on the file only,
    and the caller's logging as it was afterwards."""
    before = [(name, logging.getLogger(name).handlers[:], logging.getLogger(name).propagate)
              for name in ("", "lightning.pytorch", "lightning.fabric")]
    fit([*TINY, "trainer.enable_progress_bar=false"], output_dir=tmp_path / "run")
    log = (tmp_path / "run/train.log").read_text()
    assert "GPU available" in log and "Total params" in log and "`Trainer.fit` stopped" in log
    out, err = capfd.readouterr()
    assert "done: 6 steps" in out
    assert "GPU available" not in out + err and "Total params" not in out + err and "Seed set" not in out + err
    assert [(name, logging.getLogger(name).handlers, logging.getLogger(name).propagate)
            for name, _, _ in before] == before


def test_fit_honours_paths_output_dir_as_the_command_line_does(tmp_path):
    """paths.output_dir=X: what the run writes goes to X; Hydra's .hydra/ and train.log stay in the run dir."""
    elsewhere = tmp_path / "elsewhere"
    _, objects = fit([*TINY, *QUIET, f"paths.output_dir={elsewhere}"], output_dir=tmp_path / "run")
    assert (elsewhere / "metrics.json").is_file() and (elsewhere / "checkpoints/final.ckpt").is_file()
    assert not (tmp_path / "run/metrics.json").exists()
    assert (tmp_path / "run/train.log").is_file() and (tmp_path / "run/.hydra/config.yaml").is_file()
    assert objects["cfg"].paths.output_dir == str(elsewhere)


def test_evaluate_writes_the_eval_json_the_command_line_writes(tmp_path, capfd):
    from primer.eval import main as eval_main

    fit([*TINY, *QUIET], output_dir=tmp_path / "run")
    checkpoint = tmp_path / "run/checkpoints/final.ckpt"
    for overrides, name in (([], "final.eval.json"), (["data.seed=1"], "final.eval.data.seed=1.json")):
        capfd.readouterr()
        scores, objects = evaluate(checkpoint, overrides)
        out, err = capfd.readouterr()
        assert "GPU available" not in out + err  # as quiet as fit()
        assert objects["eval_json"] == checkpoint.parent / name
        written = objects["eval_json"].read_bytes()
        assert json.loads(written) == scores
        objects["eval_json"].unlink()
        eval_main([f"ckpt_path={checkpoint}", *overrides])  # the command line's
        assert objects["eval_json"].read_bytes() == written
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=[*TINY, *QUIET, "data.seed=1"])
    _, objects = evaluate(checkpoint, cfg)  # a whole config: named by what it changes, as its override would be
    assert objects["eval_json"] == checkpoint.parent / "final.eval.data.seed=1.json"


def test_evaluate_with_a_whole_config_does_not_need_the_stored_one_to_pass_the_checks(tmp_path):
    """A GPU run's checkpoint, scored on a CPU with a config composed here: the stored trainer.accelerator=gpu
    names the difference (`trainer.accelerator=cpu` in the file name) and is not checked against this machine."""
    import torch

    from primer.run.checkpoints import CONFIG_KEY

    fit([*TINY, *QUIET], output_dir=tmp_path / "run")
    checkpoint = torch.load(tmp_path / "run/checkpoints/final.ckpt", weights_only=True)
    checkpoint[CONFIG_KEY]["config"]["trainer"]["accelerator"] = "gpu"
    torch.save(checkpoint, tmp_path / "gpu.ckpt")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=[*TINY, *QUIET])
    _, objects = evaluate(tmp_path / "gpu.ckpt", cfg)
    assert objects["eval_json"] == tmp_path / "gpu.eval.trainer.accelerator=cpu.json"
