"""The real conf/: every choice of every group composes and builds, and bad input stops in one line."""

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_object, instantiate
from omegaconf import OmegaConf

from primer.config import CONFIG_DIR, CONFIG_NAME, task_config
from tests.bad_input import SHARED, says
from tests.conftest import run_cli

GROUPS = {group: sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))
          for group in ("model", "optimizer", "data", "trainer", "logger", "callbacks")}
EVERY_CHOICE = [(group, choice) for group, choices in GROUPS.items() for choice in choices]


def test_groups_offer_the_documented_choices():
    assert GROUPS["model"] == ["autograd", "custom_relu", "manual", "raw_custom_relu", "sequential", "two_layer"]
    assert {"sgd", "adam"} <= set(GROUPS["optimizer"])
    assert GROUPS["data"] == ["random", "teacher"]
    assert {"cpu", "gpu", "auto"} <= set(GROUPS["trainer"])
    assert {"tensorboard", "csv", "none"} <= set(GROUPS["logger"])


def test_defaults_are_the_primers_sizes(make_config):
    cfg = make_config()
    assert (cfg.data.batch_size, cfg.data.input_dim, cfg.data.output_dim) == (64, 1000, 10)
    assert (cfg.model.hidden_dim, cfg.optimizer.lr, cfg.trainer.max_steps) == (100, 1e-4, 500)
    assert cfg.trainer.accelerator == "cpu" and cfg.model._target_ == "primer.tutorial.nets.TwoLayerNet"


def test_model_sizes_follow_the_data(make_config):
    cfg = make_config("data.input_dim=7", "data.output_dim=2")
    assert (cfg.model.input_dim, cfg.model.output_dim) == (7, 2)


def test_trainer_config_lists_every_trainer_argument(make_config):
    expected = set(inspect.signature(L.Trainer.__init__).parameters) - {"self", "callbacks", "plugins"}
    assert set(make_config().trainer) - {"_target_", "_convert_"} == expected


def check_built(group, built, cfg):
    """What a group's choice built does what its config says."""
    import torch
    from lightning.pytorch.loggers import Logger

    if group == "model":
        assert built(torch.randn(3, cfg.data.input_dim)).shape == (3, cfg.data.output_dim)
    elif group == "optimizer":
        assert isinstance(built, torch.optim.Optimizer) and built.defaults["lr"] == cfg.optimizer.lr
    elif group == "data":
        built.setup("fit")
        x, y = next(iter(built.train_dataloader()))
        assert x.shape == (cfg.data.batch_size, cfg.data.input_dim)
        assert y.shape == (cfg.data.batch_size, cfg.data.output_dim)
    elif group == "trainer":
        assert isinstance(built, L.Trainer) and built.max_steps == cfg.trainer.max_steps
        if cfg.trainer.accelerator != "auto":  # auto picks what the machine has
            expected = {"cpu": "CPUAccelerator", "gpu": "CUDAAccelerator"}[cfg.trainer.accelerator]
            assert type(built.accelerator).__name__ == expected
        assert cfg.trainer.devices == "auto" or built.num_devices == cfg.trainer.devices
    else:  # logger, callbacks: an object of each entry's class; none for `none`
        targets = [get_object(c._target_) for c in cfg[group].values()]  # a class, or a function that builds one
        assert len(built) == len(targets)
        assert all(type(b) is t for b, t in zip(built, targets) if inspect.isclass(t))
        assert all(isinstance(b, Logger if group == "logger" else L.Callback) for b in built)


@pytest.mark.parametrize(("group", "choice"), EVERY_CHOICE, ids=[f"{g}={c}" for g, c in EVERY_CHOICE])
def test_every_choice_composes_and_builds(make_config, tmp_path, monkeypatch, request, group, choice):
    if choice in ("gpu", "ddp") and not __import__("torch").cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    monkeypatch.chdir(tmp_path)  # logger=mlflow's client opens its store under outputs/ here
    if choice == "mlflow":  # the store takes seconds to make: only this row asks for it
        request.getfixturevalue("start_store")(tmp_path)
    cfg = make_config(f"{group}={choice}")
    built = instantiate(cfg[group]) if "_target_" in cfg[group] else [instantiate(c) for c in cfg[group].values()]
    if group == "optimizer":
        built = built(instantiate(cfg.model).parameters())
    check_built(group, built, cfg)
    OmegaConf.resolve(task_config(cfg))  # interpolations resolve


BAD_INPUT = [  # the rows of tests/bad_input.py, and these: (command line, message), read as there
    *SHARED,
    ("data=mnist", "data=mnist: no such data; choose one of random, teacher ..."),
    ("logger=comet", "logger=comet: no such logger; choose one of csv, mlflow, none, tensorboard, wandb ..."),
    ("data.input_dim=-3", "data.input_dim=-3: must be a positive integer ..."),
    ("model.hidden_dim=-1", "model.hidden_dim=-1: must be a positive integer ..."),
    # commands that print a config: it must compose; they are not what a sweep or run would be
    ("model=foo --cfg job", "model=foo: no such model; choose one of autograd, custom_relu ..."),
    ("trainer.max_step=5 --cfg all", "trainer.max_step: no such key; did you mean trainer.max_steps? ..."),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[a for a, _ in BAD_INPUT])
@pytest.mark.slow
def test_bad_input_stops_with_one_line_and_no_run_dir(tmp_path, args, message):
    result = run_cli(*args.split(), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert says(result.stderr.strip(), message), result.stderr
    assert not (tmp_path / "outputs").exists()  # nothing was started


@pytest.mark.slow
def test_printing_a_config_shows_values_that_a_run_would_reject(tmp_path):
    result = run_cli("data.batch_size=0", "--cfg", "job", cwd=tmp_path)
    assert result.returncode == 0 and "batch_size: 0" in result.stdout


@pytest.mark.slow
@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize(("typed", "said", "instead"), [
    ("trainer.accelerator=gpu", "trainer.accelerator=gpu: no CUDA GPU is available",
     "trainer.accelerator=cpu or trainer.accelerator=auto"),
    ("trainer=gpu", "trainer=gpu: no CUDA GPU is available",
     "trainer=cpu or trainer=auto"),
])  # each about what was typed
def test_gpu_without_a_gpu_says_so_and_suggests_cpu_or_auto(tmp_path, typed, said, instead):
    result = run_cli(typed, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {said}") and result.stderr.endswith(f"; use {instead}\n")


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--help"], ["--cfg", "job"], ["model=foo"]])
def test_config_only_commands_do_not_import_torch(tmp_path, args):
    probe = (
        "import atexit, sys, runpy\n"
        "atexit.register(lambda: print('torch imported:', 'torch' in sys.modules, file=sys.stderr))\n"
        f"sys.argv = ['primer.train', *{args!r}]\n"
        "runpy.run_module('primer.train', run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "torch imported: False" in result.stderr


@pytest.mark.slow
def test_help_lists_every_group_with_its_choices_and_default(tmp_path):
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0 and not (tmp_path / "outputs").exists()
    for group, choices in GROUPS.items():
        assert f"  {group}: {', '.join(choices)}  [" in result.stdout
    models = "autograd, custom_relu, manual, raw_custom_relu, sequential, two_layer"
    assert f"  model: {models}  [two_layer]" in result.stdout
    assert "  optimizer.lr: must be a number, 0 or more" in result.stdout


def run_dir_name(*overrides) -> str:
    """The name of the run dir `python -m primer.train OVERRIDES` makes (conf/train.yaml's hydra.run.dir)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=list(overrides), return_hydra_config=True)
    return Path(cfg.hydra.run.dir).name


@pytest.mark.parametrize("overrides, name", [
    (["model=manual", "optimizer.lr=1.1498870747119445e-05", "trainer.max_steps=60"],
     "manual_lr1.15e-05_max_steps60"),  # a group's choice by its value; a key by its last part; 4 digits
    (["+trainer.x=[1,2]", "data.seed=3", "seed=4"], "x1-2_data.seed3_seed4"),  # two `seed`s: whole keys
    (["trainer.accelerator=cpu"], "accelerator-cpu"),
    ([], ""),
])
def test_a_run_dir_is_named_by_what_its_command_line_changed_then_time_and_pid(overrides, name):
    """Values first (TensorBoard cuts names in its lists), then the time and the process id (unique); letters,
    digits and `.-_` only: Hydra reads no `=` or `,` back in ckpt_path=PATH."""
    pid = os.getpid()
    assert re.fullmatch(rf"{re.escape(name)}{'_' if name else ''}\d{{4}}-\d{{6}}_{pid}", run_dir_name(*overrides))


def test_a_resume_is_named_as_the_run_it_continues():
    first = "manual_1206-074320_10720"
    resume = run_dir_name(f"ckpt_path=outputs/runs/{first}/checkpoints/interrupted.ckpt", "trainer.max_steps=12")
    assert re.fullmatch(rf"{first}_resumed_max_steps12_\d{{4}}-\d{{6}}_{os.getpid()}", resume)
    again = run_dir_name(f"ckpt_path=outputs/runs/{resume}/checkpoints/interrupted.ckpt")
    assert re.fullmatch(rf"{first}_resumed_\d{{4}}-\d{{6}}_{os.getpid()}", again)  # named after the first run
    assert run_dir_name("ckpt_path=/downloads/gift.ckpt").startswith("gift_resumed_")
    long = "_".join(f"lr{i}e-4" for i in range(20)) + "_1206-074320_10720"  # 140 characters
    many = [f"+trainer.k{i}=123456789" for i in range(30)]
    assert len(run_dir_name(f"ckpt_path={long}/checkpoints/final.ckpt", *many).encode()) <= 240  # a file name: 255


def test_a_name_holds_whole_values_only():
    from primer.config import joined, name_items

    items = name_items(["model=two_layer", "optimizer.lr=0.0006431172050131992"], groups={"model"})
    assert items == ["two_layer", "lr0.0006431"]
    assert joined(items, 20) == "two_layer"  # the lr does not fit: left out, not cut
    assert joined(items, 21) == "two_layer_lr0.0006431"
    assert name_items(["optimizer.lr=1e-4", "seed=0"], groups=set(), only={"optimizer.lr"}) == ["lr1e-4"]
