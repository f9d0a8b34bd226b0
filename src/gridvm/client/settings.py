"""Which server to talk to and with which token.

Precedence: explicit arguments, then the environment (``GRIDVM_URL``,
``GRIDVM_TOKEN``), then the file ``gridvm login`` writes (``$GRIDVM_CONFIG``,
else ``$XDG_CONFIG_HOME/gridvm/config.json``, else
``~/.config/gridvm/config.json``). The file holds a secret: it is written
0600 in a 0700 directory, atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gridvm.client.errors import ConfigError

URL_ENV = "GRIDVM_URL"
TOKEN_ENV = "GRIDVM_TOKEN"  # noqa: S105 - the name of a variable, not a secret
CONFIG_ENV = "GRIDVM_CONFIG"
LOGIN_HINT = "log in first: gridvm login URL --token-file FILE"


@dataclass(frozen=True)
class Settings:
    url: str
    token: str

    def __repr__(self) -> str:  # never show the token
        return f"Settings(url={self.url!r}, token='***')"


def config_path() -> Path:
    """Where ``gridvm login`` keeps the URL and the token."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gridvm" / "config.json"


def normalize_url(url: str) -> str:
    """``url`` without trailing slashes or ``/api/v1``; refuse what is not http(s)."""
    clean = url.strip().rstrip("/")
    clean = clean.removesuffix("/api/v1").rstrip("/")
    if not clean.startswith(("http://", "https://")) or len(clean.split("://", 1)[1]) == 0:
        raise ConfigError(
            f"{url!r} is not a gridvm URL", hint="write it like http://gridvm.example.org:8750"
        )
    return clean


def check_token(token: str) -> str:
    """``token`` without surrounding white space; refuse what cannot be sent in a header."""
    clean = token.strip()
    if not clean:
        raise ConfigError("the API token is empty", hint=LOGIN_HINT)
    if not clean.isascii() or not clean.isprintable() or any(c.isspace() for c in clean):
        raise ConfigError(
            "the API token contains characters a token cannot have",
            hint="copy the token again, exactly as 'gridvm token create' printed it",
        )
    return clean


def read_config(path: Path | None = None) -> dict[str, str]:
    """The saved URL and token ({} when there is no config file)."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", hint=LOGIN_HINT) from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON", hint=LOGIN_HINT) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a gridvm configuration", hint=LOGIN_HINT)
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def load_settings(url: str | None = None, token: str | None = None) -> Settings:
    """The URL and token to use (arguments > environment > config file).

    The saved token is only ever sent to the saved URL: with another URL it
    is not used, so a mistyped ``--url`` cannot leak it to another server.
    """
    url = url or os.environ.get(URL_ENV) or None
    token = token or os.environ.get(TOKEN_ENV) or None
    hint = f"{LOGIN_HINT}, or set {URL_ENV} and {TOKEN_ENV}"
    if not (url and token):
        saved = read_config()
        saved_url = saved.get("url")
        if url is None:
            url = saved_url
        if token is None and saved.get("token"):
            if saved_url and url and normalize_url(url) == normalize_url(saved_url):
                token = saved["token"]
            else:
                hint = f"the saved token is for {saved_url}; {LOGIN_HINT}"
    missing = [what for what, value in (("URL", url), ("API token", token)) if not value]
    if missing:
        raise ConfigError(f"no gridvm {' and no '.join(missing)} configured", hint=hint)
    assert url is not None and token is not None
    return Settings(normalize_url(url), check_token(token))


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write ``settings`` to the config file (0600, directory 0700), atomically."""
    path = path or config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = json.dumps({"url": settings.url, "token": settings.token}, indent=2) + "\n"
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    temp = Path(temp_name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def forget_settings(path: Path | None = None) -> bool:
    """Delete the config file; ``True`` if there was one."""
    path = path or config_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
