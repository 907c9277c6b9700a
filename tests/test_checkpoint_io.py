"""primer's CheckpointIO plugin (primer.run.checkpoint_io): a load forgets the paths a checkpoint names, a save
is atomic (a full disk keeps the earlier checkpoint), and a removal deletes only what this run saved.

The rows with Lightning's own TorchCheckpointIO show that what the plugin stops is real."""

import errno
import os
import pickle
import subprocess

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.plugins import TorchCheckpointIO

from primer.run.checkpoint_io import RunCheckpointIO
from tests.test_reliability import RunsCode


MC_KEY = ("ModelCheckpoint{'monitor': None, 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1, "
          "'train_time_interval': None}")


def model_checkpoint_state(**paths) -> dict:
    """checkpoint["callbacks"] holding a ModelCheckpoint's state as Lightning saves it, with `paths` set."""
    state = {"monitor": None, "best_model_score": None, "best_model_path": "", "current_score": None,
             "dirpath": "/runs/a/checkpoints", "best_k_models": {}, "kth_best_model_path": "",
             "kth_value": torch.tensor(float("inf")), "last_model_path": ""}
    return {MC_KEY: state | paths}


def test_a_load_forgets_every_path_a_callback_state_names_and_keeps_its_scores(tmp_path):
    state = model_checkpoint_state(best_model_path="local:///anywhere", last_model_path="/elsewhere/last.ckpt",
                                   kth_best_model_path="/x", best_k_models={"/x": torch.tensor(2.0)},
                                   best_model_score=torch.tensor(1.0))
    torch.save({"state_dict": {}, "callbacks": state}, tmp_path / "a.ckpt")
    loaded = RunCheckpointIO().load_checkpoint(tmp_path / "a.ckpt")["callbacks"][MC_KEY]
    assert (loaded["best_model_path"], loaded["last_model_path"], loaded["kth_best_model_path"]) == ("", "", "")
    assert loaded["best_k_models"] == {} and loaded["best_model_score"] == torch.tensor(1.0)


def test_a_load_runs_no_pickled_code_whatever_weights_only_it_is_asked_for(tmp_path):
    torch.save({"state_dict": {}, "payload": RunsCode(tmp_path / "marker")}, tmp_path / "a.ckpt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        RunCheckpointIO().load_checkpoint(tmp_path / "a.ckpt", weights_only=False)
    assert not (tmp_path / "marker").exists()


def test_a_checkpoint_saved_on_a_gpu_loads_on_a_machine_without_one(tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")  # as a GPU run saves it
        torch.save({"state_dict": {"w": torch.ones(2)}}, tmp_path / "gpu.ckpt")
    loaded = RunCheckpointIO().load_checkpoint(tmp_path / "gpu.ckpt")
    assert loaded["state_dict"]["w"].device == torch.device("cpu")


def test_a_removal_deletes_a_checkpoint_this_run_saved_and_nothing_else(tmp_path, caplog):
    io = RunCheckpointIO()
    io.save_checkpoint({"w": torch.zeros(2)}, tmp_path / "run/epoch=0.ckpt")
    io.remove_checkpoint(f"local://{tmp_path}/run/epoch=0.ckpt")  # one file, however it is spelled
    assert not (tmp_path / "run/epoch=0.ckpt").exists()
    (tmp_path / "victim").mkdir()
    (tmp_path / "other.ckpt").write_bytes(b"someone's")
    for path in (f"local://{tmp_path}/victim", tmp_path / "victim", tmp_path / "other.ckpt"):
        io.remove_checkpoint(path)
    assert (tmp_path / "victim").is_dir() and (tmp_path / "other.ckpt").read_bytes() == b"someone's"
    assert f"kept local://{tmp_path}/victim: primer deletes only checkpoints its run saved" in caplog.text


def test_a_full_disk_during_a_save_keeps_the_earlier_checkpoint_loadable(tmp_path, monkeypatch):
    io, path = RunCheckpointIO(), tmp_path / "final.ckpt"
    io.save_checkpoint({"w": torch.ones(3)}, path)

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as raised:
        io.save_checkpoint({"w": torch.zeros(3)}, path)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["final.ckpt"]


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs: a real full disk (needs root and mount; skipped without them)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def fill(disk, leave: int) -> None:
    """Fills `disk` until `leave` bytes are free."""
    free = os.statvfs(disk)
    (disk / "filler").write_bytes(b"\0" * (free.f_bavail * free.f_frsize - leave))


@pytest.mark.parametrize("io_class, kept", [(RunCheckpointIO, True), (TorchCheckpointIO, False)],
                         ids=["primer", "lightning"])
def test_on_a_full_disk_a_bigger_checkpoint_leaves_the_earlier_one_whole(small_disk, io_class, kept):
    """Lightning writes to a temp file elsewhere and copies it over the old checkpoint, truncating it first."""
    io, path = io_class(), small_disk / "final.ckpt"
    io.save_checkpoint({"w": torch.ones(10_000)}, path)  # 40 kB
    fill(small_disk, leave=8192)
    with pytest.raises(OSError) as raised:
        io.save_checkpoint({"w": torch.zeros(20_000)}, path)  # 80 kB: no room for it, with or without the old one
    assert raised.value.errno == errno.ENOSPC
    try:
        loaded = torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(10_000))
    except Exception:
        loaded = False
    assert loaded is kept
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "final.ckpt"]  # no temp file left


def fit(tmp_path, checkpoint_io, max_steps: int, ckpt_path=None, val_check_interval=None) -> L.Trainer:
    """Lightning's BoringModel, with a ModelCheckpoint in tmp_path/checkpoints (the latest one kept), through
    `checkpoint_io`."""
    trainer = L.Trainer(default_root_dir=tmp_path, max_steps=max_steps, limit_val_batches=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, plugins=[checkpoint_io],
                        val_check_interval=val_check_interval,
                        callbacks=[ModelCheckpoint(dirpath=tmp_path / "checkpoints", filename="{step}")])
    trainer.fit(BoringModel(), ckpt_path=ckpt_path, weights_only=True)
    return trainer


@pytest.mark.slow  # trains in this process
@pytest.mark.parametrize("io_class, kept", [(RunCheckpointIO, True), (TorchCheckpointIO, False)],
                         ids=["primer", "lightning"])
def test_a_resume_deletes_no_dir_its_checkpoint_names(tmp_path, io_class, kept):
    """Past primer's check before the run (eval, the Python API, a job checked elsewhere), the plugin alone keeps
    Lightning from deleting what a resumed ModelCheckpoint's state names: here `local:///dir`, which its test of
    'is it in my dir?' skips."""
    fit(tmp_path / "first", io_class(), max_steps=2)
    [path] = (tmp_path / "first/checkpoints").iterdir()
    victim = tmp_path / "victim"
    (victim / "keep").mkdir(parents=True)
    checkpoint = torch.load(path, weights_only=True)
    [state] = checkpoint["callbacks"].values()
    state["best_model_path"] = f"local://{victim}"
    torch.save(checkpoint, tmp_path / "gift.ckpt")
    resumed = fit(tmp_path / "again", io_class(), max_steps=4, ckpt_path=tmp_path / "gift.ckpt")
    assert resumed.global_step == 4
    assert (victim / "keep").is_dir() is kept


@pytest.mark.slow  # trains in this process
def test_a_model_checkpoint_still_removes_the_checkpoints_it_replaced_in_its_run(tmp_path):
    fit(tmp_path, RunCheckpointIO(), max_steps=3, val_check_interval=1)  # saves at steps 1, 2 and 3
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step=3.ckpt"]


@pytest.mark.slow  # trains in this process
def test_every_checkpoint_a_primer_run_saves_goes_through_the_plugin(tmp_path):
    import primer
    from tests.conftest import QUIET, TINY

    _, objects = primer.fit([*TINY, *QUIET], output_dir=tmp_path / "run")
    checkpoint_io = objects["trainer"].strategy.checkpoint_io
    assert isinstance(checkpoint_io, RunCheckpointIO)
    assert checkpoint_io.saved == {str(tmp_path / "run/checkpoints/final.ckpt")}
