"""The CLI's memory of interrupted uploads: ``gridvm image upload FILE`` run again on the
same file (same path, size and modification time, same server, same image name)
continues the upload.

Kept next to the login settings (``uploads.json``, mode 0600); holds only upload ids.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gridvm.client.settings import config_path


def _state_file() -> Path:
    return config_path().parent / "uploads.json"


def file_key(server_url: str, path: Path, name: str) -> str:
    st = path.stat()
    return f"{server_url}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{name}"


def _load() -> dict[str, str]:
    try:
        data = json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _save(entries: dict[str, str]) -> None:
    path = _state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(entries, f, indent=1)
    tmp.replace(path)


def remembered(key: str) -> str | None:
    return _load().get(key)


def remember(key: str, upload_id: str) -> None:
    entries = _load()
    entries[key] = upload_id
    _save(entries)


def forget(key: str) -> None:
    entries = _load()
    if entries.pop(key, None) is not None:
        _save(entries)
