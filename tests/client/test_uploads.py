"""Resumable uploads through the SDK: chunks, progress, an interruption and its resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridvm.client import Client, InvalidRequest, TransferError
from gridvm.client import uploads as uploads_module
from gridvm.client.uploads import UploadInterrupted
from gridvm.schemas.images import UploadOut
from tests.client.disks import MIB, disk_with_data


def test_an_upload_goes_in_chunks_with_progress(gv: Client, tmp_path: Path) -> None:
    disk = disk_with_data(tmp_path / "d.qcow2")
    sent: list[int] = []
    image = gv.images.upload(disk, "chunks", progress=sent.append, chunk_size=MIB)
    assert image.name == "chunks"
    size = disk.stat().st_size
    assert sent[0] == 0 and sent[-1] == size and sent == sorted(sent)
    assert len(set(sent)) >= size // MIB  # one step per chunk
    assert gv.images.uploads.list() == []


def test_an_interrupted_upload_resumes_where_the_server_stopped(
    gv: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = disk_with_data(tmp_path / "d.qcow2")
    monkeypatch.setattr(uploads_module.time, "sleep", lambda _s: None)
    real = uploads_module.Uploads.send_chunk

    def breaks_after_two(
        self: uploads_module.Uploads, upload_id: str, offset: int, data: bytes
    ) -> UploadOut:
        if offset >= 2 * MIB:
            raise TransferError("the connection broke")
        return real(self, upload_id, offset, data)

    monkeypatch.setattr(uploads_module.Uploads, "send_chunk", breaks_after_two)
    with pytest.raises(UploadInterrupted) as caught:
        gv.images.upload(disk, "later", chunk_size=MIB)
    assert caught.value.received == 2 * MIB
    assert f"--resume {caught.value.upload_id}" in (caught.value.hint or "")
    assert gv.images.list() == []
    monkeypatch.setattr(uploads_module.Uploads, "send_chunk", real)

    image = gv.images.upload(disk, "ignored", resume=caught.value.upload_id, chunk_size=MIB)
    assert image.name == "later"  # the session's name
    with pytest.raises(TransferError, match="is for"):
        other = gv.images.uploads.create("other", 10)
        gv.images.upload(disk, "x", resume=other.id)


def test_a_declared_size_over_the_limit_is_refused_before_sending(gv: Client) -> None:
    with pytest.raises(InvalidRequest) as caught:
        gv.images.uploads.create("huge", 2**60)
    assert caught.value.status == 413
    assert gv.images.uploads.list() == []
