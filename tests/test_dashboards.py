"""TensorBoard extras read back with TensorBoard's own reader: histograms, the lr of a scheduler."""

import json
import math

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from primer.cli.train import fit_run
from tests.conftest import TINY


def events_of(run_dir):
    events = EventAccumulator(str(run_dir), size_guidance={"histograms": 0, "scalars": 0})
    events.Reload()
    return events


@pytest.mark.parametrize("model, params", [("two_layer", ["net.linear1.weight", "net.linear2.bias"]),
                                            ("manual", ["net.w1", "net.w2"])])
def test_histograms_of_weights_and_gradients_every_n_steps(make_config, tmp_path, model, params):
    fit_run(make_config(*TINY, f"model={model}", "callbacks.histograms.every_n_steps=3"))
    events = events_of(tmp_path / "run")
    for name in params:
        for kind in ("weights", "gradients"):
            assert [e.step for e in events.Histograms(f"{kind}/{name}")] == [0, 3]


def test_no_histograms_and_no_lr_by_default(make_config, tmp_path):
    fit_run(make_config(*TINY))
    tags = events_of(tmp_path / "run").Tags()
    assert tags["histograms"] == []
    assert not [t for t in tags["scalars"] if t.startswith("lr")]


@pytest.mark.parametrize("model", ["two_layer", "manual"])
def test_cosine_scheduler_decays_the_lr_and_tensorboard_logs_it(make_config, tmp_path, model):
    metrics, _ = fit_run(make_config(*TINY, f"model={model}", "scheduler=cosine", "optimizer.lr=1e-6"))
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

    fit_run(make_config(*TINY, "trainer.log_every_n_steps=3", "trainer.enable_progress_bar=false"))
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
            fit_run(cfg)
    else:
        fit_run(cfg)
    content = events_of(tmp_path / "run").PluginTagToContent(metadata.PLUGIN_NAME)
    start = plugin_data_pb2.HParamsPluginData.FromString(content[metadata.SESSION_START_INFO_TAG]).session_start_info
    end = plugin_data_pb2.HParamsPluginData.FromString(content[metadata.SESSION_END_INFO_TAG]).session_end_info
    assert start.hparams["optimizer.lr"].number_value == float(lr) and start.group_name == "run"  # its dir's name
    assert start.hparams["trainer.enable_progress_bar"].WhichOneof("kind") == "bool_value"
    assert api_pb2.Status.Name(end.status) == status and end.end_time_secs >= start.start_time_secs > 0


def test_loss_cards_open_first_on_a_log_scale_and_val_cards_have_a_point_per_validation(make_config, tmp_path):
    """TensorBoard lists card groups alphabetically: `log10_loss/` before `lr-SGD`, `train/` and `val/`.
    Validation runs once per epoch (one pass of data.steps batches) unless trainer.val_check_interval says
    more often: then each val card has a point per validation."""
    fit_run(make_config(*TINY, "trainer.val_check_interval=2", "scheduler=cosine", "trainer.enable_progress_bar=false"))
    events = events_of(tmp_path / "run")
    tags = events.Tags()["scalars"]
    assert sorted({tag.split("/")[0] for tag in tags})[:3] == ["log10_loss", "lr-SGD", "train"]
    assert [e.step for e in events.Scalars("val/loss")] == [1, 3, 5]
    for loss, view in (("train/loss", "log10_loss/train"), ("val/loss", "log10_loss/val")):
        logged = {e.step: e.value for e in events.Scalars(loss)}
        assert {e.step: e.value for e in events.Scalars(view)} == pytest.approx(
            {step: math.log10(value) for step, value in logged.items()})
    assert not {"log10_loss/train", "log10_loss/val"} & set(json.loads((tmp_path / "run/metrics.json").read_text()))


def fake_run(run_dir, hparams, overrides, metrics=("train/loss", "val/loss", "val/r2", "train/explained_variance")):
    """A run dir as a run leaves it, as far as HPARAMS' experiment reads it: its HPARAMS session in an event
    file, .hydra/overrides.yaml, metrics.json (and an hparams.yaml with Lightning's extra keys, not read)."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    from primer.run.dashboard import session_start_summary

    (run_dir / ".hydra").mkdir(parents=True)
    writer = EventFileWriter(str(run_dir))
    writer.add_event(event_pb2.Event(summary=session_start_summary(hparams, start_time=1.0)))
    writer.close()
    (run_dir / "hparams.yaml").write_text(json.dumps({**hparams, "batch_size": 64}))  # JSON is YAML
    (run_dir / ".hydra/overrides.yaml").write_text(json.dumps(overrides))
    (run_dir / "metrics.json").write_text(json.dumps({name: 1.0 for name in metrics}))


def experiment_in(logdir):
    from tensorboard.plugins.hparams import metadata

    content = events_of(logdir).PluginTagToContent(metadata.PLUGIN_NAME)[metadata.EXPERIMENT_TAG]
    return metadata.parse_experiment_plugin_data(content)


def test_hparams_ticks_the_differing_keys_runs_changed_most_and_lists_the_losses_first(tmp_path):
    from primer.run.experiment import EXPERIMENT_FILE, write_experiment

    base = {"model": "two_layer", "optimizer.lr": 1e-4, "seed": 0, "data.seed": 0, "callbacks": "default",
            "trainer.max_steps": 500, "data.steps": 500, "data.input_dim": 8}
    runs = [({}, []), ({"optimizer.lr": 1e-3}, ["optimizer.lr=1e-3"]), ({"optimizer.lr": 3e-3}, ["optimizer.lr=3e-3"]),
            ({"seed": 1, "data.seed": 1}, ["seed=1", "data.input_dim=8"]),
            ({"trainer.max_steps": 60, "data.steps": 60}, ["trainer.max_steps=60"]),
            ({"model": "sequential"}, ["model=sequential"])]
    for i, (changed, overrides) in enumerate(runs):
        fake_run(tmp_path / "outputs/runs" / str(i), {**base, **changed}, overrides)
    assert write_experiment(tmp_path / "outputs") == tmp_path / "outputs" / EXPERIMENT_FILE
    experiment = experiment_in(tmp_path / "outputs")
    ticked = [info.name for info in experiment.hparam_infos if info.differs]
    # set most often first; data.seed and data.steps split the runs as seed and trainer.max_steps do;
    # data.input_dim was set but never differs; callbacks never changes
    assert ticked == ["model", "optimizer.lr", "seed", "trainer.max_steps"]
    assert {info.name for info in experiment.hparam_infos} == set(base)  # every key stays a column to tick, no other
    metrics = [info.name.tag for info in experiment.metric_infos]
    assert metrics[:3] == ["train/loss", "val/loss", "val/r2"]  # TensorBoard ticks the first 5 metrics
    assert {"log10_loss/train", "log10_loss/val", "train/explained_variance"} <= set(metrics)


def test_hparams_ticks_at_most_five_keys_and_writes_nothing_for_one_run(tmp_path):
    from primer.run.experiment import write_experiment

    fake_run(tmp_path / "one/run", {"a": 1}, ["a=1"])
    assert write_experiment(tmp_path / "one") is None and not any((tmp_path / "one").glob("events*primer*"))
    for run in range(4):  # seven keys, each splitting the four runs its own way
        values = {"a": run, "b": run // 2, "c": run % 2, "d": run == 0, "e": run == 1, "f": run == 2, "g": run == 3}
        fake_run(tmp_path / "many" / str(run), values, [f"{key}={value}" for key, value in values.items()])
    write_experiment(tmp_path / "many")
    assert sum(info.differs for info in experiment_in(tmp_path / "many").hparam_infos) == 5


def test_hparams_columns_that_cannot_be_written_say_so_and_fail_nothing(tmp_path, caplog, monkeypatch):
    import errno

    import primer.writes
    from primer.run.experiment import write_experiment

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    for run in (0, 1):
        fake_run(tmp_path / "outputs" / str(run), {"a": run}, [f"a={run}"])
    monkeypatch.setattr(primer.writes, "write_atomic", full_disk)
    assert write_experiment(tmp_path / "outputs") is None  # the runs finished: their view does not fail them
    assert "HPARAMS' columns not written: [Errno 28] No space left on device" in caplog.text
