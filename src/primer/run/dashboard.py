"""What TensorBoard shows: a run per run dir, no flat `epoch` card, log10 loss cards first
(primer.run.results.RunLogger), an HPARAMS row per run, and HPARAMS' columns.

TensorBoard names a run by the dir that holds its event files, so the logger writes straight into
the run dir, whose name leads with what the run changed (primer.config). Each run writes its HPARAMS
session: its values, its status, and a Trial ID that leads with the same.

HPARAMS' columns and metric order: primer.run.experiment.
Light: TensorBoard's own modules only (its `hparams_pb` needs neither TensorFlow nor torch), so that
primer.sweeps.report needs neither torch nor Lightning.
"""

import time
from collections.abc import Mapping

# the metrics a person looks at first: the sweep table's columns, a run's last lines
FIRST_METRICS = ("train/loss", "val/loss", "val/r2")

HParamValue = str | bool | int | float | None

# the losses on a log scale, TensorBoard only (primer.run.results.RunLogger): their group sorts first
LOG10_LOSS = {"train/loss": "log10_loss/train", "val/loss": "log10_loss/val"}


def session_start_summary(hparams: Mapping[str, HParamValue], start_time: float, trial: str = ""):
    """A run's HPARAMS row: its values, None left out (an empty cell, not "None"), named `trial` in the Trial ID
    column (TensorBoard groups the sessions of one trial id in one row: each run's is its own; "": the run's
    path under the logdir, which a sweep's job starts with `multirun/<sweep>/`)."""
    from tensorboard.plugins.hparams import summary_v2

    values = {key: value for key, value in hparams.items() if value is not None}
    return summary_v2.hparams_pb(values, trial_id=trial, start_time_secs=start_time)


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
