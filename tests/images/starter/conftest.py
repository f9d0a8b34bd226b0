"""Fixtures for the tiny image tests: one cached build per session, VMs killed at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gridvm.images.starter import build_tiny, load_manifest

from .guest_vm import TinyVM, make_overlay

REPO_ROOT = Path(__file__).resolve().parents[3]
# The same place the Makefile builds into, so tests and make share one cache.
STARTER_BUILD_DIR = REPO_ROOT / "build" / "starter"

StartVM = Callable[..., TinyVM]


@pytest.fixture(scope="session")
def tiny_image() -> Path:
    """The tiny image directory, built once (or found up to date)."""
    return build_tiny(STARTER_BUILD_DIR)


@pytest.fixture
def start_vm(tiny_image: Path, tmp_path: Path) -> Iterator[StartVM]:
    """Start VMs on the tiny image; each call gets its own work directory.

    ``start_vm(overlay=None, seed=None, nic=False)``: a new overlay is made
    unless one is passed (to boot the same disk twice). Every VM still running
    at the end of the test is killed.
    """
    vms: list[TinyVM] = []

    def start(overlay: Path | None = None, seed: Path | None = None, nic: bool = False) -> TinyVM:
        workdir = tmp_path / f"vm{len(vms)}"
        workdir.mkdir()
        if overlay is None:
            base = tiny_image / load_manifest(tiny_image).disk
            overlay = make_overlay(base, workdir / "overlay.qcow2")
        vm = TinyVM(tiny_image, workdir, overlay=overlay, seed=seed, nic=nic)
        vms.append(vm)
        return vm.start()

    yield start
    for vm in vms:
        vm.stop()
