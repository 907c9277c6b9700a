"""Every file primer writes goes through here, whole or not at all (a temp file beside it, flushed, renamed over it):
a reader or a crash sees the old file or the new one, and a link at the name is replaced, not followed."""

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Writes `data` (text as UTF-8) to `path`; an OSError leaves `path` as it was and names it."""
    path, temp = Path(path), None
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        umask = os.umask(0o022)  # reading the umask means setting it
        os.umask(umask)
        os.chmod(fd, 0o666 & ~umask)  # as open() would make it: mkstemp's is private (0600)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException as error:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
        if isinstance(error, OSError) and (error.filename is None or temp is None or error.filename == temp):
            error.filename, error.filename2 = str(path), None  # the file meant, not the temp file
        raise
