"""The checks of what a fit relies on (primer.checks.validation), on configs the command line cannot spell directly."""

import pytest
from omegaconf import open_dict

from primer.exits import BadConfig
from primer.checks.validation import check_monitors, check_signatures

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


def test_a_node_under_recursive_false_is_config_for_its_parent_not_a_call(make_config):
    """instantiate builds nothing under `_recursive_: false`: the parent gets the node as config, whatever its keys."""
    plugin = "+trainer.plugins=[{_target_: lightning.pytorch.plugins.DoublePrecision, foo: 1}]"
    with pytest.raises(BadConfig, match=r"^trainer\.plugins\[0\]\.foo: .* give trainer\.plugins again without it$"):
        check_signatures(make_config(plugin))
    check_signatures(make_config(plugin, "+trainer._recursive_=false"))
