"""A real PostgreSQL cluster for tests, started by hand (there is no systemd here).

``initdb`` refuses to run as root, so the cluster belongs to the ``postgres``
user that Debian's package creates; it listens only on a unix socket in its
own directory. Each test gets a fresh database.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PORT = 5439


def _as_postgres(*argv: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv]


@contextmanager
def postgres_cluster() -> Iterator[Path]:
    """Start a throw-away cluster; yields its directory (which also holds the socket)."""
    root = Path(tempfile.mkdtemp(prefix="gvpg"))
    shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    subprocess.run(
        _as_postgres(
            str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "gridvm", "-E", "UTF8"
        ),
        check=True,
        capture_output=True,
    )
    options = f"-k {root} -p {PORT} -c listen_addresses='' -c fsync=off -c full_page_writes=off"
    subprocess.run(
        _as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-l",
            str(root / "log"),
            "start",
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield root
    finally:
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def new_database(cluster: Path) -> str:
    """Create an empty database and return its SQLAlchemy URL."""
    name = f"t_{secrets.token_hex(4)}"
    subprocess.run(
        [
            str(PG_BIN / "psql"),
            "-h",
            str(cluster),
            "-p",
            str(PORT),
            "-U",
            "gridvm",
            "-d",
            "postgres",
            "-q",
            "-c",
            f"CREATE DATABASE {name}",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
    )
    return f"postgresql+psycopg://gridvm@/{name}?host={cluster}&port={PORT}"
