"""ecgio.files: the one atomic writer every package uses."""

from __future__ import annotations

import os
import stat

import pytest

from ecgio import files
from ecgio.errors import RecordError


def test_atomic_write_replaces_content_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "file.json"
    files.atomic_write(target, b"old")
    files.atomic_write(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]
    assert stat.S_IMODE(target.stat().st_mode) == files.FILE_MODE


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "file.json"
    files.atomic_write(target, b"old")

    def boom(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]


def test_atomic_write_with_keeps_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "record.mat"
    files.atomic_write(target, b"old")

    def half_then_fail(stream):
        stream.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        files.atomic_write_with(target, half_then_fail, sync=False)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["record.mat"]


@pytest.mark.parametrize("name", ["../outside.dat", "/etc/passwd", "", "sub/../../outside.dat"])
def test_contained_file_rejects_names_leaving_the_folder(tmp_path, name):
    folder = tmp_path / "records"
    folder.mkdir()
    (tmp_path / "outside.dat").write_bytes(b"x")
    with pytest.raises(RecordError, match="plain name inside"):
        files.contained_file(folder, name)


def test_contained_file_rejects_links_out_devices_fifos_and_big_files(tmp_path):
    folder = tmp_path / "records"
    folder.mkdir()
    (tmp_path / "secret").write_bytes(b"x")
    (folder / "link.dat").symlink_to(tmp_path / "secret")
    (folder / "zero.dat").symlink_to("/dev/zero")
    os.mkfifo(folder / "fifo.dat")
    (folder / "big.dat").write_bytes(b"x" * 100)
    (folder / "ok.dat").write_bytes(b"x" * 10)
    with pytest.raises(RecordError, match="links outside"):
        files.contained_file(folder, "link.dat")
    with pytest.raises(RecordError, match="links outside|not a regular file"):
        files.contained_file(folder, "zero.dat")
    with pytest.raises(RecordError, match="not a regular file"):
        files.contained_file(folder, "fifo.dat")
    with pytest.raises(RecordError, match="100 bytes"):
        files.contained_file(folder, "big.dat", max_bytes=50)
    with pytest.raises(RecordError, match="missing"):
        files.contained_file(folder, "absent.dat")
    assert files.contained_file(folder, "ok.dat", max_bytes=50) == folder / "ok.dat"


def test_exclusive_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    lock = tmp_path / ".lock"
    with files.exclusive_lock(lock):
        with pytest.raises(files.LockHeld) as held, files.exclusive_lock(lock):
            pass
        assert held.value.holder == str(os.getpid())
    with files.exclusive_lock(lock):  # released on exit
        pass
