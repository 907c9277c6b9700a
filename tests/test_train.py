"""Tiny real trainings of the real config into tmp_path: outputs, logging, seeding, convergence."""

import csv
import json
import math
import subprocess
import sys

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from primer.cli.train import fit_run
from tests.conftest import MODELS, PRIMER_LR, QUIET, TINY, cli_env, read_checkpoint, run_cli, same_weights

FINAL = "checkpoints/final.ckpt"


def csv_losses(run_dir):
    """train/loss of every step, as the CSV logger wrote it (needs log_every_n_steps=1)."""
    with open(run_dir / "csv" / "metrics.csv") as f:
        return [float(row["train/loss"]) for row in csv.DictReader(f) if row.get("train/loss")]


def test_run_leaves_metrics_checkpoint_and_tensorboard_events(make_config, tmp_path):
    metrics, _ = fit_run(make_config(*TINY))
    run_dir = tmp_path / "run"

    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved == pytest.approx(metrics)
    expected = {f"{stage}/{name}" for stage in ("train", "val") for name in ("loss", "mse", "r2", "explained_variance")}
    assert set(saved) == expected
    assert read_checkpoint(run_dir / FINAL)["global_step"] == 6

    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert expected <= set(events.Tags()["scalars"])
    # the first step, then every 2nd step, the last included (Lightning counts steps from 0)
    assert [e.step for e in events.Scalars("train/loss")] == [0, 1, 3, 5]
    for tag in expected:
        assert events.Scalars(tag)[-1].value == pytest.approx(saved[tag], rel=1e-6)
    # TensorBoard's loss card on a log scale, at the same steps (primer.run.results.RunLogger)
    log10 = [(e.step, e.value) for e in events.Scalars("log10_loss/train")]
    assert log10 == [(e.step, pytest.approx(math.log10(e.value), abs=1e-6)) for e in events.Scalars("train/loss")]
    assert not events.Tags()["graph"]  # off by default: it goes through the deprecated torch.jit.trace


def test_the_model_graph_is_drawn_when_asked_for(make_config, tmp_path):
    fit_run(make_config(*TINY, "logger.tensorboard.log_graph=true"))
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    assert events.Tags()["graph"]


@pytest.mark.slow  # a training in a subprocess
def test_the_default_run_is_warning_clean(tmp_path):
    """Every warning made an error (PYTHONWARNINGS=error): the default run still ends as it should."""
    env = {**cli_env(), "PYTHONWARNINGS": "error"}
    result = subprocess.run([sys.executable, "-m", "primer.train", *TINY, "hydra.run.dir=run"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning" not in result.stdout + result.stderr
    assert (tmp_path / "run/checkpoints/final.ckpt").is_file()


def test_hparams_tab_lists_the_run_config_with_its_final_metrics(make_config, tmp_path):
    fit_run(make_config(*TINY, "optimizer=adam"))
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    # the run's session only: TensorBoard builds the columns from all sessions under its logdir (primer.run.dashboard)
    assert set(content) == {"_hparams_/session_start_info", "_hparams_/session_end_info"}
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert "hp_metric" not in events.Tags()["scalars"]
    assert session.hparams["optimizer"].string_value == "adam"
    assert session.hparams["optimizer.lr"].number_value == pytest.approx(1e-3)
    assert session.hparams["model.hidden_dim"].number_value == 4


@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_a_few_steps(make_config, tmp_path, model):
    metrics, _ = fit_run(make_config(*TINY, f"model={model}", f"optimizer.lr={PRIMER_LR[model]}"))
    assert {"train/loss", "val/loss", "val/r2"} <= metrics.keys()  # so that the next line checks something
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert read_checkpoint(tmp_path / "run" / FINAL)["global_step"] == 6  # manual optimization advances global_step too


@pytest.mark.slow  # in-process, but full primer sizes for 500 steps: half the fast subset's time, more under load
@pytest.mark.parametrize("model", MODELS)
def test_every_model_alone_converges_at_the_lr_it_carries(make_config, tmp_path, model):
    """`model=X` and nothing else (the model sets the tutorial's lr), the tutorial's full sizes, 500 steps: the summed
    loss falls 6+ orders of magnitude, below 1e-3."""
    cfg = make_config(f"model={model}", "logger=csv",
                      "trainer.log_every_n_steps=1", "trainer.enable_progress_bar=false")
    metrics, _ = fit_run(cfg)
    losses = csv_losses(tmp_path / "run")
    assert len(losses) == 500
    assert losses[-1] == pytest.approx(metrics["train/loss"])
    assert losses[-1] < 1e-3
    assert losses[0] / losses[-1] >= 1e6


def test_custom_relu_matches_clamp_relu_trajectory(make_config, tmp_path):
    for model in ("two_layer", "custom_relu"):
        fit_run(make_config(*TINY, f"model={model}", "logger=csv", "trainer.log_every_n_steps=1", subdir=model))
    two_layer, custom_relu = csv_losses(tmp_path / "two_layer"), csv_losses(tmp_path / "custom_relu")
    assert len(two_layer) == 6 and two_layer == custom_relu
    weights = [read_checkpoint(tmp_path / m / FINAL)["state_dict"] for m in ("two_layer", "custom_relu")]
    assert same_weights(*weights)


def test_same_seed_gives_the_same_run_bit_for_bit(make_config, tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        fit_run(make_config(*TINY, f"seed={seed}", subdir=name))
    a, b, c = (read_checkpoint(tmp_path / name / FINAL)["state_dict"] for name in "abc")
    assert same_weights(a, b)
    assert not torch.equal(a["net.linear1.weight"], c["net.linear1.weight"])
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in "ab"]
    assert metrics[0] == metrics[1]


@pytest.mark.slow  # a full-size training: 300 steps of the default net
def test_teacher_task_generalizes_to_its_validation_set(make_config):
    metrics, _ = fit_run(make_config("data=teacher", "optimizer=adam", "trainer.max_steps=300"))
    assert metrics["val/r2"] > 0.8
    assert metrics["val/loss"] > metrics["train/loss"]  # held-out data, not the training batch


def test_no_logger_still_writes_metrics_json(make_config, tmp_path):
    fit_run(make_config(*TINY, "logger=none", "callbacks=none"))
    assert set(json.loads((tmp_path / "run" / "metrics.json").read_text())) >= {"train/loss", "val/r2"}
    assert not list((tmp_path / "run").rglob("events.out.tfevents.*"))


@pytest.mark.slow
def test_command_line_run_from_any_directory(tmp_path):
    result = run_cli(*TINY, "model=custom_relu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    assert (run_dir / ".hydra" / "config.yaml").read_text().count("custom") == 1
    assert (run_dir / "checkpoints" / "final.ckpt").is_file()
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert "train/loss" in json.loads((run_dir / "metrics.json").read_text())
    assert "step 6/6  train/loss " in result.stdout  # the progress, one line per interval: stdout is a pipe
    for noise in ("LeafSpec", "litlogger"):  # third-party lines the user can do nothing about
        assert noise not in result.stdout + result.stderr + (run_dir / "train.log").read_text()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_run_keeps_the_batch_on_the_device(make_config, tmp_path):
    """The data moves to the GPU once (primer.run.data): every step finds it there, at the same address."""
    record = tmp_path / "devices.json"
    metrics, _ = fit_run(make_config(*TINY, "trainer=gpu", "+callbacks.devices._target_=tests.callbacks.RecordDevices",
                                f"+callbacks.devices.path={record}"))
    steps = json.loads(record.read_text())
    assert len(steps) == 6
    assert {(s["x"], s["y"], s["module"]) for s in steps} == {("cuda:0", "cuda:0", "cuda:0")}
    assert len({s["x_ptr"] for s in steps}) == 1  # no copy per step
    assert read_checkpoint(tmp_path / "run" / FINAL)["global_step"] == 6
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_design_card_command_trains_custom_relu_on_the_gpu_to_the_cpu_loss(tmp_path):
    """`python -m primer.train model=custom_relu trainer.accelerator=gpu`, at the primer's size: the final
    loss matches the CPU's (float32 matmuls stay exact: no TF32)."""
    losses = {}
    for accelerator in ("gpu", "cpu"):
        result = run_cli("model=custom_relu", f"trainer.accelerator={accelerator}", *QUIET,
                         f"hydra.run.dir={accelerator}", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        losses[accelerator] = json.loads((tmp_path / accelerator / "metrics.json").read_text())["train/loss"]
        used = "True" if accelerator == "gpu" else "False"
        assert f"GPU available: True (cuda), used: {used}" in result.stdout  # Lightning's own report
    assert losses["gpu"] == pytest.approx(losses["cpu"], rel=1e-3, abs=1e-8)


def test_train_metrics_of_a_batch_are_those_of_the_torchmetrics_classes():
    """A logging step's train/mse, r2 and explained_variance: torchmetrics' functions on the batch, bit for bit
    what its metric classes compute from a fresh state (what the val and test metrics use)."""
    import lightning as L

    from primer.tutorial.nets import TwoLayerNet
    from primer.run.system import Regression, regression_metrics

    system = Regression(TwoLayerNet(8, 4, 2), torch.optim.SGD, input_dim=8)
    system.trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    generator = torch.Generator().manual_seed(0)
    y_pred, y = torch.randn(16, 2, generator=generator), torch.randn(16, 2, generator=generator)  # (N, D_out)
    classes = regression_metrics("train/")
    classes.update(y_pred, y)
    expected = classes.compute()
    logged = system._batch_metrics(y_pred, y)
    assert logged.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(logged[name], value), name


# torch registers an atexit hook that logs its FakeTensor cache statistics at INFO; a Ctrl-C during
# `import torch` leaves torch's own logging set-up undone, and the lines reached the console through
# Hydra's root handler. Here: the state that Ctrl-C leaves (Hydra's logging set up, torch's not).
FAKE_TENSOR_STATS = """
import logging, sys
from hydra import compose, initialize_config_dir
from hydra.core.utils import configure_log
from primer.config import CONFIG_DIR, CONFIG_NAME
with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
    cfg = compose(CONFIG_NAME, return_hydra_config=True)
cfg.hydra.runtime.output_dir = "."  # where job_logging's file goes
configure_log(cfg.hydra[sys.argv[1]])
assert "torch" not in sys.modules
logging.getLogger("torch._subclasses.fake_tensor").info("FakeTensor cache stats:")
logging.getLogger("primer.anything").info("primer's own line")
"""


def test_the_console_and_the_log_file_drop_the_lines_a_user_can_do_nothing_about(tmp_path):
    """conf/hydra/job_logging/primer.yaml's filter (primer.cli.quiet.without), as Hydra sets it up for a job."""
    lines = "\nfor line in ('Received SIGTERM: 15', 'try litlogger', 'kept'):\n    logging.getLogger('x').info(line)\n"
    script = FAKE_TENSOR_STATS.partition("assert")[0] + lines
    result = subprocess.run([sys.executable, "-c", script, "job_logging"], cwd=tmp_path, env=cli_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (log,) = tmp_path.glob("*.log")
    for shown in (result.stdout + result.stderr, log.read_text()):
        assert "kept" in shown and "SIGTERM" not in shown and "litlogger" not in shown


@pytest.mark.parametrize("logging_config", ["hydra_logging", "job_logging"])
def test_torchs_fake_tensor_statistics_stay_off_the_console(tmp_path, logging_config):
    result = subprocess.run([sys.executable, "-c", FAKE_TENSOR_STATS, logging_config], cwd=tmp_path, env=cli_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    shown = result.stdout + result.stderr
    assert "primer's own line" in shown and "FakeTensor" not in shown
