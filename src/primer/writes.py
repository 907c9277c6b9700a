"""Every file primer writes goes through here: whole or not at all, and never through a link.

The bytes go to a temp file in the target's own dir, are flushed to disk, then renamed over the
target. A reader (or a crash, or a full disk) sees the old file or the new one, never a half; an
earlier run's file survives any failure of the new write. The rename replaces a link at the
target's name instead of writing where it points.
"""

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Writes `data` (text as UTF-8) to `path`, atomically; OSError (a full disk, a read-only dir) leaves
    `path` as it was and names it."""
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    temp = None
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(fd, 0o666 & ~_umask())  # as open() would make it: mkstemp's temp file is private (0600)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException as error:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
        if isinstance(error, OSError) and (error.filename is None or temp is None or error.filename == temp):
            error.filename = str(path)  # the file meant, not the temp file: "No space left on device" alone
            error.filename2 = None  # does not say where, and the temp file's name is no help
        raise


def _umask() -> int:
    """The process's umask, read when a file is written (a user may change it): reading it means setting it."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
