"""Config values judged against the real signatures (primer.checks.signatures: jsonargparse finds the arguments,
pydantic judges the values), as a command line spells them: Hydra composes, OmegaConf resolves interpolations, YAML
types the values."""

import typing

import pytest

from primer.exits import BadConfig
from primer.checks.validation import check_signatures

ACCEPTED = [
    "trainer.max_time={minutes:1}",  # Lightning's dict argument
    "trainer.precision=16",
    "trainer.precision=16-mixed",
    "trainer.fast_dev_run=true",
    "trainer.fast_dev_run=3",
    "trainer.devices=[0]",
    "trainer.gradient_clip_val=1",  # an int is a number
    "trainer.deterministic=warn",
    "trainer.min_steps=${trainer.max_steps}",  # judged as resolved
    "+trainer.profiler._target_=lightning.pytorch.profilers.SimpleProfiler",  # Hydra builds it
    "optimizer=adam +optimizer.betas=[0.8,0.9]",  # a list stands for Adam's tuple
    "+logger.tensorboard.max_queue=5",  # TensorBoardLogger hands what it does not take to SummaryWriter
]

REJECTED = [
    ("trainer.max_epochs=true", "trainer.max_epochs=true: Input should be a valid integer (lightning.Trainer)"),
    ("trainer.enable_progress_bar=1",
     "trainer.enable_progress_bar=1: Input should be a valid boolean (lightning.Trainer)"),
    ("optimizer.momentum=true", "optimizer.momentum=true: Input should be a valid number (torch.optim.SGD)"),
    ("trainer.precision=true", "trainer.precision=true: must be one of 64, 32, 16, transformer-engine, "),
    ("trainer.devices=[0,x]", "trainer.devices=[0, 'x']: item 1: Input should be a valid integer; "
     "Input should be a valid string; "),  # every item
    ("trainer.max_time={minutes:true}", "trainer.max_time={'minutes': True}: Input should be a valid string; "
     "Input should be a valid duration; Input should be a valid integer"),
    ("trainer.max_time=[]", "trainer.max_time=[]: Input should be a valid string; Input should be a valid duration; "
     "Input should be an object"),  # a list is no mapping
    ("trainer.enable_progress_bar={_target_:lightning.pytorch.profilers.SimpleProfiler}",
     "trainer.enable_progress_bar={'_target_': 'lightning.pytorch.profilers.SimpleProfiler'}: Input should be a "
     "valid boolean"),  # what a _target_ builds is no bool
    ("optimizer=adam +optimizer.betas=[0.9,0.9,0.9]",
     "optimizer.betas=[0.9, 0.9, 0.9]: must be 2 values, got 3 (torch.optim.Adam)"),
    ("optimizer=adam +optimizer.betas=[a,0.9]",
     "optimizer.betas=['a', 0.9]: item 0: Input should be a valid number (torch.optim.Adam)"),  # each item too
    # primer's RunLogger(*args, flush_secs=5, **kwargs) is judged by TensorBoardLogger's arguments too
    ("logger.tensorboard.log_graph=maybe",
     "logger.tensorboard.log_graph=maybe: Input should be a valid boolean (primer.run.results.RunLogger)"),
    ("+logger.tensorboard.max_queu=5", "logger.tensorboard.max_queu: primer.run.results.RunLogger takes no argument "
     "max_queu; did you mean logger.tensorboard.max_queue?"),  # a SummaryWriter argument, through **kwargs
    ("+logger.tensorboard.log_dir=x", "logger.tensorboard.log_dir: primer.run.results.RunLogger takes no argument "
     "log_dir"),  # TensorBoardLogger makes it from save_dir, name and version
    ("+logger.tensorboard.flush_secs=often",
     "logger.tensorboard.flush_secs=often: Input should be a valid number (primer.run.results.RunLogger)"),
]


@pytest.mark.parametrize("overrides", ACCEPTED)
def test_what_the_signatures_allow_passes(make_config, overrides):
    check_signatures(make_config(*overrides.split()))


@pytest.mark.parametrize(("overrides", "message"), REJECTED, ids=[o for o, _ in REJECTED])
def test_what_they_do_not_allow_is_named_with_what_they_do(make_config, overrides, message):
    with pytest.raises(BadConfig) as raised:
        check_signatures(make_config(*overrides.split()))
    assert str(raised.value).startswith(message), str(raised.value)


def test_a_config_spells_a_path_as_a_string_and_a_tuple_as_a_list():
    from pathlib import Path

    from primer.checks.signatures import problem

    def accepts(hint, found) -> bool:
        return problem(hint, found) is None

    assert accepts(Path, "runs/a") and not accepts(Path, 3) and not accepts(Path, {"_target_": "pathlib.Path"})
    assert accepts(tuple[int, ...], [1, 2, 3]) and not accepts(tuple[int, ...], [1, True])
    assert accepts(tuple[()], []) and not accepts(tuple[()], [1])


def test_a_hint_of_a_few_values_or_of_n_items_says_what_it_allows():
    """Any Literal, or union of Literals (null where Optional), and any tuple of N items; other hints in pydantic's
    words."""
    from primer.checks.signatures import problem

    assert problem(typing.Literal["min", "max"], "up") == "must be one of min, max"
    assert problem(typing.Optional[typing.Literal[1, "1", "a"]], 2) == "must be one of 1, a, null"  # each once
    assert problem(tuple[int, int, int] | None, [1]) == "must be 3 values, got 1"
    assert problem(tuple[int, int, int], [1, 2, "x"]) == "item 2: Input should be a valid integer"
    assert problem(typing.Literal["a"] | int, "b") == "Input should be 'a'; Input should be a valid integer"


def test_a_bool_is_no_number_and_a_target_stands_for_an_object():
    from lightning.pytorch.profilers import Profiler

    from primer.checks.signatures import problem

    def accepts(hint, found) -> bool:
        return problem(hint, found) is None

    assert not accepts(int, True) and not accepts(float, False) and accepts(float, 1)
    built = {"_target_": "lightning.pytorch.profilers.SimpleProfiler"}
    assert accepts(typing.Any, built) and accepts(Profiler | str | None, built) and not accepts(int | None, built)


def test_a_value_from_a_run_dir_hydra_has_not_made_yet_is_left_to_the_run():
    """logger.csv.save_dir is ${hydra:runtime.output_dir} by way of two interpolations. Before a run's dir is
    made, Hydra's runtime is another run's, or unset: Hydra's resolver then reads its MISSING output_dir as
    null, which is no value to judge a path by."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from primer.checks.validation import value
    from primer.config import CONFIG_DIR, CONFIG_NAME

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=["logger=csv"], return_hydra_config=True)
    HydraConfig().set_config(cfg)  # a compose's runtime: output_dir is ??? until Hydra makes the run dir
    assert value(cfg, "logger.csv.save_dir", default="not yet") == "not yet"
    check_signatures(cfg)
