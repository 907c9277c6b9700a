"""What TensorBoard shows: a run per run dir, no flat `epoch` card, a log10 loss card
(primer.run.results.RunLogger), and an HPARAMS row per run.

TensorBoard names a run by the dir that holds its event files, so the logger writes straight into
the run dir: a sweep's runs are named `0_model=two_layer,...`. Each run writes its
HPARAMS session (its values, its status) and no experiment config: without one, TensorBoard builds
the HPARAMS columns from the sessions under whatever logdir it is given (a sweep dir, or all of
outputs/), marks the keys whose values differ there and lists them first, and takes the metrics from
the logged scalars. A config written by primer would be one per logdir, stale as soon as another
run lands beside it, and would need an event file outside any run (an empty `.` run).
Light: TensorBoard's own modules only (its `hparams_pb` needs neither TensorFlow nor torch), so that
primer.sweeps.report needs neither torch nor Lightning.
"""

import time
from collections.abc import Mapping

# the metrics a person looks at first: the sweep table's columns, a run's last lines
FIRST_METRICS = ("train/loss", "val/loss", "val/r2")

HParamValue = str | bool | int | float | None


def session_start_summary(hparams: Mapping[str, HParamValue], start_time: float):
    """A run's HPARAMS row: its values, None left out (an empty cell, not "None")."""
    from tensorboard.plugins.hparams import summary_v2

    values = {key: value for key, value in hparams.items() if value is not None}
    # trial_id "": no session group; TensorBoard names the row by its run, as it does each run
    return summary_v2.hparams_pb(values, trial_id="", start_time_secs=start_time)


def session_end_summary(status: str):
    """The end of a run's HPARAMS session, with its status: `STATUS_SUCCESS` or `STATUS_FAILURE`.

    Built here: TensorBoard's own `session_end_pb` needs TensorFlow, and torch's `hparams` ends every
    session with STATUS_SUCCESS (and writes bools as numbers)."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(status), end_time_secs=time.time())
    content = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(session_end_info=end))
    summary = summary_pb2.Summary()
    summary.value.add(tag=metadata.SESSION_END_INFO_TAG, metadata=content, tensor=metadata.NULL_TENSOR)
    return summary

