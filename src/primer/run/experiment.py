"""HPARAMS' columns for `tensorboard --logdir outputs`, written after each run and sweep from the runs under the
logdir: TensorBoard ticks the first 5 keys marked as differing and the first 5 metrics of the first summary it finds."""

import io
import json
import logging
import time
from collections import Counter
from pathlib import Path

from primer.config import key_and_value
from primer.run.dashboard import KEY_METRICS, LOG10_LOSS, HParamValue
from primer.run.files import EVENT_FILES, EXPERIMENT_FILE, METRICS_FILE

SHOWN_COLUMNS = 5  # what TensorBoard's HPARAMS table ticks of each kind (tf-hparams-query-pane)

log = logging.getLogger(__name__)


def logdir_of(run_dir: Path) -> Path | None:
    """The dir that holds `runs/` and `multirun/` (`outputs/`), for a run or sweep dir in one of them."""
    run_dir = Path(run_dir).absolute()
    return run_dir.parent.parent if run_dir.parent.name in ("runs", "multirun") else None


def write_experiment(logdir: Path) -> Path | None:
    """The experiment summary's path; None where fewer than two runs compare or it cannot be written (said why)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    from primer.writes import write_atomic

    run_dirs = sorted({path.parent for path in Path(logdir).rglob(EVENT_FILES) if path.name != EXPERIMENT_FILE})
    runs = [run for run in map(_run_record, run_dirs) if run is not None]
    if len(runs) < 2:
        return None
    hparams, changed, metrics = zip(*runs)
    values = {}
    for key, value in ((k, v) for run in hparams for k, v in run.items() if v is not None):
        values.setdefault(key, []).append(value)
    shown = shown_keys(hparams, changed, values)
    names = {name for run in metrics for name in run}
    ordered = [m for m in KEY_METRICS if m in names] + sorted(names - set(KEY_METRICS))
    experiment = api_pb2.Experiment(
        hparam_infos=[_hparam_info(key, found, key in shown) for key, found in sorted(values.items())],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=name)) for name in ordered])
    content = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(experiment=experiment))
    summary = summary_pb2.Summary()
    summary.value.add(tag=metadata.EXPERIMENT_TAG, metadata=content, tensor=metadata.NULL_TENSOR)
    buffer = io.BytesIO()
    writer = RecordWriter(buffer)
    for event in (event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"),
                  event_pb2.Event(wall_time=time.time(), summary=summary)):
        writer.write(event.SerializeToString())
    try:
        write_atomic(Path(logdir) / EXPERIMENT_FILE, buffer.getvalue())
    except OSError as error:
        log.warning(f"HPARAMS' columns not written: {error}")
        return None
    return Path(logdir) / EXPERIMENT_FILE


def shown_keys(hparams: list[dict], changed: list[list[str]], values: dict[str, list]) -> list[str]:
    """The SHOWN_COLUMNS differing keys set most often, less any that splits the runs as one before it (`data.seed`)."""
    distinct = {key: {json.dumps(value) for value in found} for key, found in values.items()}
    set_by = Counter(key for keys in changed for key in set(keys))
    shown, groupings = [], set()
    for key in sorted((k for k, found in distinct.items() if len(found) > 1),
                      key=lambda key: (-set_by[key], -len(distinct[key]), key)):
        first = {}  # each run's value by the first run that has it: same tuple, same groups
        grouping = tuple(first.setdefault(json.dumps(run.get(key)), i) for i, run in enumerate(hparams))
        if grouping not in groupings:
            shown.append(key)
            groupings.add(grouping)
    return shown[:SHOWN_COLUMNS]


def _hparam_info(name: str, values: list, shown: bool):
    """Numbers as an interval, anything else as its distinct values (the filter's boxes)."""
    from tensorboard.plugins.hparams import api_pb2, summary_v2

    info = api_pb2.HParamInfo(name=name, differs=shown)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        summary_v2.RealInterval(float(min(values)), float(max(values))).update_hparam_info(info)
    else:
        is_bool = all(isinstance(v, bool) for v in values)
        summary_v2.Discrete(set(values) if is_bool else {str(v) for v in values}).update_hparam_info(info)
    return info


def _run_record(run_dir: Path) -> tuple[dict, list[str], list[str]] | None:
    """Its HPARAMS values, the keys its command line set and its metric names; None if damaged or without a session."""
    import yaml
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata

    def read(name: str, empty):
        return (yaml.safe_load if name.endswith("yaml") else json.loads)((run_dir / name).read_text()) \
            if (run_dir / name).is_file() else empty

    try:
        overrides, metrics = read(".hydra/overrides.yaml", []), read(METRICS_FILE, {})
        starts = (value for path in sorted(run_dir.glob(EVENT_FILES)) for event in EventFileLoader(str(path)).Load()
                  for value in event.summary.value if value.tag == metadata.SESSION_START_INFO_TAG)
        start = metadata.parse_session_start_info_plugin_data(next(starts).metadata.plugin_data.content)
    except Exception:  # noqa: BLE001  whatever is wrong with a run's files, it is left out of the comparison
        return None
    if not (isinstance(overrides, list) and isinstance(metrics, dict)):
        return None
    hparams: dict[str, HParamValue] = {name: getattr(v, v.WhichOneof("kind")) for name, v in start.hparams.items()
                                       if v.WhichOneof("kind") in ("number_value", "string_value", "bool_value")}
    changed = [key_and_value(str(o))[0] for o in overrides]
    return hparams, changed, [str(m) for m in metrics] + [view for loss, view in LOG10_LOSS.items() if loss in metrics]
