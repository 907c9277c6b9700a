"""The metric names and a run's HPARAMS session; light (TensorBoard's modules only) for primer.sweeps.report."""

import time
from collections.abc import Mapping

HParamValue = str | bool | int | float | None


def loss_name(stage: str) -> str:
    return f"{stage}/loss"


TRAIN_LOSS, VAL_LOSS = loss_name("train"), loss_name("val")
KEY_METRICS = (TRAIN_LOSS, VAL_LOSS, "val/r2")  # a run's last lines, the sweep table's columns, HPARAMS' first
# the losses on a log scale (RunLogger), TensorBoard only: their cards sort before `lr-*`, `train/`, `val/`
LOG10_LOSS = {TRAIN_LOSS: "log10_loss/train", VAL_LOSS: "log10_loss/val"}


def session_start_summary(hparams: Mapping[str, HParamValue], start_time: float, trial: str = ""):
    """A run's HPARAMS row, None left out (an empty cell); `trial` its Trial ID ("": its path under the logdir)."""
    from tensorboard.plugins.hparams import summary_v2

    values = {key: value for key, value in hparams.items() if value is not None}
    return summary_v2.hparams_pb(values, trial_id=trial, start_time_secs=start_time)


def session_end_summary(status: str):
    """`STATUS_SUCCESS` or `STATUS_FAILURE` (TensorBoard's own function needs TensorFlow)."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(status), end_time_secs=time.time())
    content = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(session_end_info=end))
    summary = summary_pb2.Summary()
    summary.value.add(tag=metadata.SESSION_END_INFO_TAG, metadata=content, tensor=metadata.NULL_TENSOR)
    return summary
