"""TensorBoard extras read back with TensorBoard's own reader: histograms, the lr of a scheduler."""

import json
import math

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from primer.cli.train import train
from tests.conftest import TINY


def events_of(run_dir):
    events = EventAccumulator(str(run_dir), size_guidance={"histograms": 0, "scalars": 0})
    events.Reload()
    return events


@pytest.mark.parametrize("model, params", [("two_layer", ["net.linear1.weight", "net.linear2.bias"]),
                                            ("manual", ["net.w1", "net.w2"])])
def test_histograms_of_weights_and_gradients_every_n_steps(make_config, tmp_path, model, params):
    train(make_config(*TINY, f"model={model}", "callbacks.histograms.every_n_steps=3"))
    events = events_of(tmp_path / "run")
    for name in params:
        for kind in ("weights", "gradients"):
            assert [e.step for e in events.Histograms(f"{kind}/{name}")] == [0, 3]


def test_no_histograms_and_no_lr_by_default(make_config, tmp_path):
    train(make_config(*TINY))
    tags = events_of(tmp_path / "run").Tags()
    assert tags["histograms"] == []
    assert not [t for t in tags["scalars"] if t.startswith("lr")]


@pytest.mark.parametrize("model", ["two_layer", "manual"])
def test_cosine_scheduler_decays_the_lr_and_tensorboard_logs_it(make_config, tmp_path, model):
    metrics, _ = train(make_config(*TINY, f"model={model}", "scheduler=cosine", "optimizer.lr=1e-6"))
    events = events_of(tmp_path / "run")
    logged = events.Scalars("lr-SGD")
    assert [e.step for e in logged] == [1, 3, 5]  # on the logging steps, as every other scalar
    for e in logged:
        assert e.value == pytest.approx(1e-6 * (1 + math.cos(math.pi * e.step / 6)) / 2, rel=1e-5)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved == pytest.approx(metrics) and saved["lr-SGD"] == pytest.approx(logged[-1].value)
    for tag, value in saved.items():
        assert events.Scalars(tag)[-1].value == pytest.approx(value, rel=1e-6)


def test_loss_curve_starts_at_the_first_step_and_ends_at_the_last(make_config, tmp_path):
    """Training values are written every log_every_n_steps steps, and on the first and the last."""
    from primer.sweeps.report import loss_curve

    train(make_config(*TINY, "trainer.log_every_n_steps=3", "trainer.enable_progress_bar=false"))
    steps, values = loss_curve(tmp_path / "run")
    assert steps == [1, 3, 6] and values[0] > values[-1]


@pytest.mark.parametrize("lr, status", [("1e-4", "STATUS_SUCCESS"), ("10", "STATUS_FAILURE")])
def test_hparams_session_holds_the_run_values_and_ends_with_its_status(make_config, tmp_path, lr, status):
    """A run's HPARAMS row: its values as typed (a bool stays a bool), and whether it finished."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    from primer.exits import Diverged

    cfg = make_config(*TINY, f"optimizer.lr={lr}", "trainer.enable_progress_bar=false")
    if status == "STATUS_FAILURE":
        with pytest.raises(Diverged):
            train(cfg)
    else:
        train(cfg)
    content = events_of(tmp_path / "run").PluginTagToContent(metadata.PLUGIN_NAME)
    start = plugin_data_pb2.HParamsPluginData.FromString(content[metadata.SESSION_START_INFO_TAG]).session_start_info
    end = plugin_data_pb2.HParamsPluginData.FromString(content[metadata.SESSION_END_INFO_TAG]).session_end_info
    assert start.hparams["optimizer.lr"].number_value == float(lr) and start.group_name == ""
    assert start.hparams["trainer.enable_progress_bar"].WhichOneof("kind") == "bool_value"
    assert api_pb2.Status.Name(end.status) == status and end.end_time_secs >= start.start_time_secs > 0
