"""primer.writes.write_atomic: a file is replaced whole or not at all, and a link is replaced, never followed."""

import errno
import os

import pytest

from primer.writes import write_atomic


def test_write_atomic_writes_and_leaves_no_temp_file(tmp_path):
    write_atomic(tmp_path / "a.json", "{}\n")
    write_atomic(tmp_path / "a.json", b"[1]\n")
    assert (tmp_path / "a.json").read_text() == "[1]\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_write_atomic_replaces_a_link_instead_of_writing_through_it(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    (tmp_path / "run.json").symlink_to(target)
    write_atomic(tmp_path / "run.json", "new\n")
    assert target.read_text() == "precious\n"
    assert not (tmp_path / "run.json").is_symlink() and (tmp_path / "run.json").read_text() == "new\n"


def test_a_full_disk_keeps_the_earlier_file_and_names_it(tmp_path, monkeypatch):
    (tmp_path / "metrics.json").write_text('{"train/loss": 1.0}\n')

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as raised:
        write_atomic(tmp_path / "metrics.json", "{}\n")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(tmp_path / "metrics.json")
    assert (tmp_path / "metrics.json").read_text() == '{"train/loss": 1.0}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_written_file_has_the_mode_open_would_give_it(tmp_path):
    """mkstemp makes its temp file 0600: a checkpoint or metrics.json others may read gets the umask's mode."""
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "final.ckpt", b"weights")
        (tmp_path / "opened").write_bytes(b"")
    finally:
        os.umask(old)
    assert (tmp_path / "final.ckpt").stat().st_mode & 0o777 == (tmp_path / "opened").stat().st_mode & 0o777 == 0o640


def test_a_dir_that_cannot_be_written_names_the_file_meant_not_the_temp_file(tmp_path, monkeypatch):
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / ".run.json.abc.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(OSError) as raised:
        write_atomic(tmp_path / "run.json", "{}\n")
    assert raised.value.filename == str(tmp_path / "run.json")
