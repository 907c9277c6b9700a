"""HPARAMS' columns: which hyperparameters TensorBoard's table ticks, and which metrics come first.

TensorBoard's HPARAMS table ticks the first 5 hyperparameters, those it is told differ first (then by
name), and the first 5 metrics in the order its experiment summary lists them. Without an experiment
summary, TensorBoard marks every key whose values differ among the runs under its logdir and lists the
metrics alphabetically (`lr-SGD`, `train/explained_variance` first). It takes the first experiment
summary it finds, and it finds the logdir's own dir first: so at the end of each run (primer.cli.train)
and sweep (primer.sweeps.report), primer writes one into the dir that holds `runs/` and `multirun/`
(`outputs/`), and a sweep one into its own dir too, from the runs there: at most 5 keys marked as
differing, those the runs' command lines changed most often among the keys whose values differ (a
sweep's swept keys; `optimizer.lr` and `seed` before `data.steps`), less any that only follows another
(`data.seed` follows `seed`), and the losses first among the metrics. A single run alone has nothing to
compare: none is written. TensorBoard reads it as it starts: restart it to see later runs' keys.
Light, as primer.run.dashboard: TensorBoard's modules only.
"""

import io
import json
import logging
import time
from collections import Counter
from pathlib import Path

from primer.run.dashboard import FIRST_METRICS, LOG10_LOSS, HParamValue
from primer.run.files import EVENT_FILES

EXPERIMENT_FILE = "events.out.tfevents.primer-hparams"  # an event file of its own, in the logdir's own dir
SHOWN_COLUMNS = 5  # what TensorBoard's HPARAMS table ticks of each kind (tf-hparams-query-pane)
LOSSES = ("train/loss", "val/loss")

log = logging.getLogger(__name__)


def logdir_of(run_dir: Path) -> Path | None:
    """The dir that holds `runs/` and `multirun/` (`outputs/`), for a run or sweep dir in one of them."""
    run_dir = Path(run_dir).absolute()
    return run_dir.parent.parent if run_dir.parent.name in ("runs", "multirun") else None


def write_experiment(logdir: Path) -> Path | None:
    """Writes HPARAMS' experiment summary for the runs under `logdir` (the columns, module docstring) into
    `logdir`, replacing the one there; None, writing nothing, where fewer than two runs are there to compare
    or the dir cannot be written (a line says so)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    from primer.writes import write_atomic

    run_dirs = sorted({path.parent for path in Path(logdir).rglob(EVENT_FILES) if path.name != EXPERIMENT_FILE})
    runs = [_run_record(run_dir) for run_dir in run_dirs]
    runs = [run for run in runs if run is not None]
    if len(runs) < 2:
        return None
    experiment = experiment_of(*zip(*runs))
    content = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(experiment=experiment))
    summary = summary_pb2.Summary()
    summary.value.add(tag=metadata.EXPERIMENT_TAG, metadata=content, tensor=metadata.NULL_TENSOR)
    buffer = io.BytesIO()
    writer = RecordWriter(buffer)
    for event in (event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"),
                  event_pb2.Event(wall_time=time.time(), summary=summary)):
        writer.write(event.SerializeToString())
    path = Path(logdir) / EXPERIMENT_FILE
    try:
        write_atomic(path, buffer.getvalue())
    except OSError as error:  # a view of finished runs: it never fails the run or sweep that ends here
        log.warning(f"HPARAMS' columns not written: {error}")
        return None
    return path


def experiment_of(hparams: list[dict], changed: list[list[str]], metrics: list[list[str]]):
    """The experiment of runs with these hparams, keys their command lines set, and metric names."""
    from tensorboard.plugins.hparams import api_pb2

    values = {}
    for run in hparams:
        for key, value in run.items():
            if value is not None:
                values.setdefault(key, []).append(value)
    shown = shown_keys(hparams, changed)
    infos = [_hparam_info(key, found, key in shown) for key, found in sorted(values.items())]
    names = {name for run in metrics for name in run}
    ordered = [m for m in (*LOSSES, *FIRST_METRICS) if m in names]
    ordered = list(dict.fromkeys(ordered + sorted(names - set(ordered))))
    metric_infos = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=name)) for name in ordered]
    return api_pb2.Experiment(hparam_infos=infos, metric_infos=metric_infos)


def shown_keys(hparams: list[dict], changed: list[list[str]]) -> list[str]:
    """The keys HPARAMS shows first: of those whose values differ between the runs, the SHOWN_COLUMNS that the
    runs' command lines set most often (then those with the most values, then by name), less any that
    splits the runs as a key before it does."""
    distinct = {}
    for run in hparams:
        for key, value in run.items():
            if value is not None:
                distinct.setdefault(key, set()).add(json.dumps(value))
    set_by = Counter(key for keys in changed for key in set(keys))
    differ = [key for key, found in distinct.items() if len(found) > 1]
    shown, patterns = [], set()
    for key in sorted(differ, key=lambda key: (-set_by[key], -len(distinct[key]), key)):
        pattern = _grouping([json.dumps(run.get(key)) for run in hparams])
        if pattern not in patterns:  # `data.seed` follows `seed`, `data.steps` `trainer.max_steps`: one says it
            shown.append(key)
            patterns.add(pattern)
    return shown[:SHOWN_COLUMNS]


def _grouping(values: list[str]) -> tuple[int, ...]:
    """Which runs share a value: each run's value by the first run that has it (same tuple, same groups)."""
    first = {}
    return tuple(first.setdefault(value, i) for i, value in enumerate(values))


def _hparam_info(name: str, values: list, shown: bool):
    """TensorBoard's HParamInfo: numbers as an interval, anything else as its distinct values (the filter's boxes)."""
    from tensorboard.plugins.hparams import api_pb2

    info = api_pb2.HParamInfo(name=name, differs=shown)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        info.type = api_pb2.DATA_TYPE_FLOAT64
        info.domain_interval.min_value, info.domain_interval.max_value = min(values), max(values)
    elif all(isinstance(v, bool) for v in values):
        info.type = api_pb2.DATA_TYPE_BOOL
        info.domain_discrete.extend(sorted(set(values)))
    else:
        info.type = api_pb2.DATA_TYPE_STRING
        info.domain_discrete.extend(sorted({str(v) for v in values}))
    return info


def _run_record(run_dir: Path) -> tuple[dict, list[str], list[str]] | None:
    """What a run dir says of itself, read as data: its HPARAMS values (from its events, as TensorBoard
    reads them), the keys its command line set (.hydra/overrides.yaml) and its metric names (metrics.json,
    and the log10 views of the losses); None for a dir without an HPARAMS session, or a damaged file."""
    import yaml

    try:
        hparams = _session_values(run_dir)
        overrides = yaml.safe_load((run_dir / ".hydra/overrides.yaml").read_text()) \
            if (run_dir / ".hydra/overrides.yaml").is_file() else []
        metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
    except Exception:  # noqa: BLE001  whatever is wrong with a run's files, it is left out of the comparison
        return None
    if hparams is None or not isinstance(overrides, list) or not isinstance(metrics, dict):
        return None
    changed = [str(o).lstrip("+~").partition("=")[0] for o in overrides]
    names = [str(name) for name in metrics] + [LOG10_LOSS[loss] for loss in LOG10_LOSS if loss in metrics]
    return hparams, changed, names


def _session_values(run_dir: Path) -> dict[str, HParamValue] | None:
    """The values of the run's HPARAMS session (primer.run.results.RunSummary writes it as fitting starts,
    so near the top of its event file); None where none of its event files holds one."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata

    for path in sorted(run_dir.glob(EVENT_FILES)):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == metadata.SESSION_START_INFO_TAG:
                    start = metadata.parse_session_start_info_plugin_data(value.metadata.plugin_data.content)
                    return {name: getattr(v, v.WhichOneof("kind")) for name, v in start.hparams.items()
                            if v.WhichOneof("kind") in ("number_value", "string_value", "bool_value")}
    return None
