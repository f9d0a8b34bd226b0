from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.cloud import Cloud, run_cloud

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cloud(tmp_path_factory: pytest.TempPathFactory, starter_dir: Path) -> Iterator[Cloud]:
    # A short base path keeps QEMU's unix socket paths under the 108-byte limit.
    with run_cloud(tmp_path_factory.mktemp("c"), starter_dir) as running:
        yield running
