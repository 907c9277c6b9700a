"""primer's own callbacks reach Lightning as one: fewer hooks called on every step, the same calls made."""

import lightning as L

from primer.run.callback_group import CallbackGroup
from primer.cli.build import loggers_and_callbacks


class Records(L.Callback):
    def __init__(self, name: str, calls: list):
        self.name, self.calls = name, calls

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.calls.append((self.name, "on_train_batch_end", outputs, batch_idx))


class RecordsSetupToo(Records):
    def setup(self, trainer, pl_module, stage):
        self.calls.append((self.name, "setup", stage))


def test_callback_group_calls_the_parts_that_override_a_hook_in_order():
    calls = []
    group = CallbackGroup(RecordsSetupToo("a", calls), Records("b", calls))
    group.on_train_batch_end(None, None, "loss", "batch", 3)
    group.setup(None, None, "fit")
    group.on_train_start(None, None)  # overridden by no part: calls nothing
    assert calls == [("a", "on_train_batch_end", "loss", 3), ("b", "on_train_batch_end", "loss", 3),
                     ("a", "setup", "fit")]
    assert group.hooks["on_train_start"] == [] and group.state_dict() == {}


def test_default_run_hands_lightning_four_callbacks(make_config, tmp_path):
    """Checkpoint, summary and progress bar (Lightning finds them by type), then primer's own as one;
    the weight histograms, off by default, are not registered."""
    _, callbacks = loggers_and_callbacks(make_config(), cores={})
    assert [type(c).__name__ for c in callbacks] == ["ModelCheckpoint", "ModelSummary", "LineProgress", "CallbackGroup"]
    names = [type(p).__name__ for p in callbacks[-1].parts]
    assert names == ["TrainingStarted", "RunSummary", "StopOnNonFinite", "SaveOnInterrupt", "StoreConfig",
                     "ApplyOptimizerConfig"]
