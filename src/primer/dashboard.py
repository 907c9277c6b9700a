"""What TensorBoard shows: a run per run dir, no flat `epoch` card (primer.results.RunLogger),
an HPARAMS view that opens on what a run or a sweep changed.

TensorBoard names a run by the dir that holds its event files, so the logger writes straight into
the run dir: a sweep's runs are `0_model=two_layer,...`, not `.../tensorboard`. Its HPARAMS tab
reads one experiment config per logdir (the `_hparams_/experiment` summary); it lists the
hyperparameters that differ first and ticks the first five, and ticks the first five metrics in
the order given. So the config marks the keys a run or a sweep changed as differing, and puts
train/loss and val/loss first. A single run writes its own (primer.results.RunSummary); a sweep
writes one into the sweep dir when it ends (primer.report.SweepSummary), its jobs none.
Light: TensorBoard's protobufs only, so that primer.report needs neither torch nor Lightning.
"""

import time
from collections.abc import Iterable, Mapping
from pathlib import Path

# the metrics a person looks at first: HPARAMS' first columns, the sweep table's, a run's last lines
FIRST_METRICS = ("train/loss", "val/loss", "val/r2")

HParamValue = str | bool | int | float | None
SWEEP_EVENTS_SUFFIX = ".hparams"  # the sweep dir's own event file, replaced when the summary is rebuilt


def experiment_summary(runs: list[Mapping[str, HParamValue]], differing: Iterable[str], metrics: Iterable[str]):
    """The HPARAMS config of a logdir: every key of `runs`, those in `differing` listed (and ticked)
    first, and the metrics with FIRST_METRICS leading. A None value is left out (an empty cell)."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    differing = set(differing)
    infos = []
    for key in dict.fromkeys(k for run in runs for k in run):  # keys in first-seen order
        values = [run[key] for run in runs if run.get(key) is not None]
        info = api_pb2.HParamInfo(name=key, differs=key in differing)
        if values and all(isinstance(v, bool) for v in values):
            info.type = api_pb2.DATA_TYPE_BOOL
            info.domain_discrete.extend(sorted(set(values)))
        elif values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            info.type = api_pb2.DATA_TYPE_FLOAT64
            info.domain_interval.min_value, info.domain_interval.max_value = min(values), max(values)
        else:
            info.type = api_pb2.DATA_TYPE_STRING
            info.domain_discrete.extend(sorted({str(v) for v in values}))
        infos.append(info)
    metrics = list(metrics)
    ordered = [m for m in FIRST_METRICS if m in metrics] + sorted(set(metrics) - set(FIRST_METRICS))
    metric_infos = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=m)) for m in ordered]
    experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=metric_infos, time_created_secs=time.time())
    return _summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment))


def session_start_summary(hparams: Mapping[str, HParamValue], start_time: float):
    """A run's HPARAMS row: its values, None left out (an empty cell, not "None")."""
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo(start_time_secs=start_time)
    for key, value in hparams.items():
        if value is not None:
            kind = "bool_value" if isinstance(value, bool) else "number_value" if isinstance(value, (int, float)) \
                else "string_value"
            setattr(start.hparams[key], kind, value)
    return _summary(metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start))


def session_end_summary(status: str):
    """The end of a run's HPARAMS session, with its status: `STATUS_SUCCESS` or `STATUS_FAILURE`."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(status), end_time_secs=time.time())
    return _summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end))


def _summary(tag: str, plugin_data):
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import metadata

    summary = summary_pb2.Summary()
    summary.value.add(tag=tag, metadata=metadata.create_summary_metadata(plugin_data), tensor=metadata.NULL_TENSOR)
    return summary


def events_dir(run_dir: Path) -> Path:
    """Where a run's event files are: the run dir, or its `tensorboard/` (runs made before that)."""
    return run_dir if any(run_dir.glob("events.out.tfevents.*")) else run_dir / "tensorboard"


def session_hparams(events) -> dict[str, HParamValue]:
    """The hyperparameters a run wrote to TensorBoard (its loaded EventAccumulator); empty if none."""
    from google.protobuf import json_format
    from tensorboard.plugins.hparams import plugin_data_pb2

    try:
        content = events.PluginTagToContent("hparams").get("_hparams_/session_start_info")
    except KeyError:  # no hparams summary at all
        return {}
    if content is None:
        return {}
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {k: json_format.MessageToDict(v) for k, v in start.hparams.items()}


def differing_keys(runs: list[Mapping[str, HParamValue]]) -> list[str]:
    """The keys whose values are not the same in every run (a missing key counts as None)."""
    keys = dict.fromkeys(k for run in runs for k in run)
    return [k for k in keys if len({repr(run.get(k)) for run in runs}) > 1]


def write_sweep_experiment(sweep_dir: Path, runs: list[Mapping[str, HParamValue]], differing: Iterable[str],
                           metrics: Iterable[str]) -> None:
    """Writes the sweep's HPARAMS config into the sweep dir, as its only event file of that kind."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    for old in sweep_dir.glob(f"events.out.tfevents.*{SWEEP_EVENTS_SUFFIX}"):
        old.unlink()  # a rebuilt summary replaces the sweep's config instead of adding a second one
    writer = EventFileWriter(str(sweep_dir), filename_suffix=SWEEP_EVENTS_SUFFIX)
    writer.add_event(Event(wall_time=time.time(), summary=experiment_summary(runs, differing, metrics)))
    writer.close()


def run_hparams(cfg) -> tuple[dict[str, HParamValue], list[str] | None]:
    """The run's choices and values, flat (`optimizer.lr`), as HPARAMS takes them, and the keys its
    command line set (None in a sweep: the sweep writes the HPARAMS config, primer.report).

    Every key the command line set is included, so a swept key always has its column.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    hydra = HydraConfig.get()
    hparams = {g: c for g, c in hydra.runtime.choices.items() if not g.startswith("hydra")}
    hparams |= {"seed": cfg.seed, "trainer.max_steps": cfg.trainer.max_steps}
    for group in ("model", "optimizer", "data"):
        for key, value in OmegaConf.to_container(cfg[group], resolve=True).items():
            if not key.startswith("_"):
                hparams[f"{group}.{key}"] = value
    typed = [o.split("=", 1)[0].lstrip("+") for o in hydra.overrides.task if not o.startswith("~")]
    typed = [k for k in typed if not k.startswith("hydra")]
    for key in typed:
        if key not in hparams:
            hparams[key] = OmegaConf.select(cfg, key)
    hparams = {k: v if v is None or isinstance(v, (str, bool, int, float)) else str(v) for k, v in hparams.items()}
    return hparams, None if hydra.mode == RunMode.MULTIRUN else typed
