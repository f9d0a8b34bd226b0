"""The SDK's volumes namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridvm.client import Client
from gridvm.client.errors import ConflictError, NotFoundError
from gridvm.schemas.volumes import VolumeState


def test_create_attach_at_run_and_delete(gv: Client, qcow2: Path) -> None:
    gv.images.upload(qcow2, name="base")
    made = gv.volumes.create("scratch", "256M")
    assert (made.name, made.size_bytes, made.state) == ("scratch", 256 * 1024**2, "available")
    assert [v.id for v in gv.volumes.list()] == [made.id]
    vm = gv.vms.create(image="base", volumes=["scratch"]).vms[0]
    assert vm.volumes == ["scratch"]
    held = gv.volumes.get(made.id)
    assert (held.state, held.vm) == (VolumeState.attached, vm.id)
    with pytest.raises(ConflictError, match="attached to VM"):
        gv.volumes.delete("scratch")
    with pytest.raises(ConflictError, match="state pending"):
        gv.volumes.detach(vm.id, "scratch")
    gv.vms.terminate(vm.id)
    assert gv.volumes.delete("scratch") is None  # never used on a host: gone at once
    with pytest.raises(NotFoundError):
        gv.volumes.get("scratch")
