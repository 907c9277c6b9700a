"""The checks of what a fit relies on (primer.checks.validation), on configs the command line cannot spell directly."""

import pytest
from omegaconf import open_dict

from primer.exits import BadConfig
from primer.checks.validation import check_monitors

EARLY_STOPPING = "lightning.pytorch.callbacks.EarlyStopping"


def test_a_list_of_callbacks_is_checked_too(make_config):
    cfg = make_config()
    with open_dict(cfg):  # lightning-hydra-template's spelling: callbacks as a list
        cfg.callbacks = [{"_target_": EARLY_STOPPING, "monitor": "val/loss"}, {"_target_": EARLY_STOPPING,
                                                                              "monitor": "valid_loss"}]
    with pytest.raises(BadConfig, match=r"^callbacks\.1\.monitor=valid_loss: primer logs no such metric; "):
        check_monitors(cfg)


def test_early_stopping_that_is_not_strict_may_monitor_what_never_comes(make_config):
    """EarlyStopping(strict=False) documents that it tolerates a missing metric; Lightning decides."""
    check_monitors(make_config(f"+callbacks.es._target_={EARLY_STOPPING}", "+callbacks.es.monitor=val_loss",
                               "+callbacks.es.strict=false"))
    with pytest.raises(BadConfig, match=r"^callbacks\.es\.monitor=val_loss: .* did you mean val/loss\?"):
        check_monitors(make_config(f"+callbacks.es._target_={EARLY_STOPPING}", "+callbacks.es.monitor=val_loss"))
