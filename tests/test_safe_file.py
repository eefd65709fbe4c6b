"""State files are read safely (no FIFO hang, no symlink, bounded) and damage is set aside."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from nemo_sync._safe_file import read_state_file, set_aside


def test_a_regular_file_is_read_and_a_missing_one_is_just_missing(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    assert read_state_file(path, limit=10).missing
    path.write_bytes(b"0123456789")
    assert read_state_file(path, limit=10).data == b"0123456789"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "jobs.json"
    os.mkfifo(path)  # nobody writes to it: reading it the plain way would hang forever
    found = read_state_file(path, limit=1024)
    assert found.data is None
    assert found.problem == "it is not a regular file"


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere"
    secret.write_text("{}")
    (tmp_path / "credentials.json").symlink_to(secret)
    found = read_state_file(tmp_path / "credentials.json", limit=1024)
    assert found.data is None
    assert "symbolic link" in (found.problem or "")


def test_a_file_over_its_kinds_size_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "client_id"
    with path.open("wb") as f:
        f.truncate(10 * 1024 * 1024)  # sparse: costs no disk, would cost 10 MB to read
    found = read_state_file(path, limit=4096)
    assert found.data is None
    assert "10,485,760 bytes" in (found.problem or "")


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "jobs.json").mkdir()
    assert read_state_file(tmp_path / "jobs.json", limit=10).problem == "it is not a regular file"


def test_damage_is_moved_aside_whole_with_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jobs.json"
    path.write_bytes(b"{not json")
    with caplog.at_level(logging.WARNING, logger="nemo_sync"):
        first = set_aside(path, "it is not JSON")
        path.write_bytes(b"{again")
        second = set_aside(path, "it is not JSON")
    assert first is not None
    assert second is not None
    assert first != second  # the same second twice: a free name, nothing overwritten
    assert first.name.startswith("jobs.json.damaged-")
    assert first.read_bytes() == b"{not json"
    assert second.read_bytes() == b"{again"
    assert not path.exists()
    assert len(caplog.records) == 2
    assert first.name in caplog.records[0].getMessage()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_a_file_that_cannot_be_moved_is_left_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "jobs.json").write_bytes(b"x")
    folder.chmod(0o500)
    try:
        with caplog.at_level(logging.WARNING, logger="nemo_sync"):
            assert set_aside(folder / "jobs.json", "damaged") is None
    finally:
        folder.chmod(0o700)
    assert (folder / "jobs.json").read_bytes() == b"x"
    assert "could not be moved aside" in caplog.text
