"""primer's CheckpointIO: a load is `weights_only` and forgets the files callback states name (ModelCheckpoint would
delete a restored path, a `local:///dir` too); a save is atomic; a removal deletes only a file this process saved."""

import io
import logging
import os
from pathlib import Path

import torch
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from lightning.pytorch.plugins import TorchCheckpointIO

from primer.writes import write_atomic

log = logging.getLogger(__name__)

# The keys of ModelCheckpoint's state that name files, and what each holds when it names none.
PATH_STATE = {"best_model_path": "", "last_model_path": "", "kth_best_model_path": "", "best_k_models": {}}


class RunCheckpointIO(TorchCheckpointIO):
    def __init__(self):
        self.saved: set[str] = set()  # every checkpoint this process wrote, as `_key` spells it

    def load_checkpoint(self, path, map_location="cpu", weights_only=None) -> dict:
        # map_location as Lightning's default: a GPU run's tensors stay on the CPU until restored
        checkpoint = super().load_checkpoint(path, map_location=map_location, weights_only=True)
        states = checkpoint.get("callbacks")
        for state in states.values() if isinstance(states, dict) else ():
            if isinstance(state, dict):
                state.update({name: type(empty)() for name, empty in PATH_STATE.items() if name in state})
        return checkpoint

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        fs, local_path = url_to_fs(str(path))
        if storage_options is not None or not isinstance(fs, LocalFileSystem):  # Lightning's TypeError; no rename
            super().save_checkpoint(checkpoint, path, storage_options)
        else:
            buffer = io.BytesIO()
            torch.save(checkpoint, buffer)
            Path(local_path).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(local_path, buffer.getvalue())
        self.saved.add(_key(path))

    def remove_checkpoint(self, path) -> None:
        if _key(path) not in self.saved:
            return log.warning(f"kept {path}: primer deletes only checkpoints its run saved")
        fs, local_path = url_to_fs(str(path))
        if isinstance(fs, LocalFileSystem):
            Path(local_path).unlink(missing_ok=True)  # a file, never a dir (Lightning's rm is recursive)
        else:
            super().remove_checkpoint(path)
        self.saved.discard(_key(path))


def _key(path) -> str:
    # a local file by its absolute path (`local://`, `file://` and relative alike)
    fs, stripped = url_to_fs(str(path))
    return os.path.abspath(stripped) if isinstance(fs, LocalFileSystem) else str(path)
