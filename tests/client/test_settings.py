"""Where the SDK finds its server and token."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gridvm.client import Client, ConfigError, Settings, load_settings, save_settings
from gridvm.client.settings import config_path, normalize_url


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("GRIDVM_URL", raising=False)
    monkeypatch.delenv("GRIDVM_TOKEN", raising=False)
    config = tmp_path / "conf" / "gridvm" / "config.json"
    monkeypatch.setenv("GRIDVM_CONFIG", str(config))
    return config


def test_nothing_configured_says_how_to_log_in() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "no gridvm URL and no API token" in caught.value.message
    assert "gridvm login URL --token-file FILE" in str(caught.value)


def test_missing_token_only_names_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDVM_URL", "http://example.org:8750")
    with pytest.raises(ConfigError, match="no gridvm API token configured"):
        load_settings()


def test_saved_file_is_private_and_read_back(clean_env: Path) -> None:
    path = save_settings(Settings("http://example.org:8750", "gvm_secret"))
    assert path == clean_env == config_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_settings() == Settings("http://example.org:8750", "gvm_secret")
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]


def test_arguments_beat_environment_beat_file(monkeypatch: pytest.MonkeyPatch) -> None:
    save_settings(Settings("http://file:1", "gvm_file"))
    monkeypatch.setenv("GRIDVM_TOKEN", "gvm_env")
    assert load_settings() == Settings("http://file:1", "gvm_env")
    monkeypatch.setenv("GRIDVM_URL", "http://env:2")
    assert load_settings() == Settings("http://env:2", "gvm_env")
    assert load_settings(url="http://arg:3/") == Settings("http://arg:3", "gvm_env")
    assert load_settings("http://arg:3", "gvm_arg") == Settings("http://arg:3", "gvm_arg")


def test_broken_config_file_is_a_clear_error(clean_env: Path) -> None:
    clean_env.parent.mkdir(parents=True)
    clean_env.write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_settings()


@pytest.mark.parametrize(
    ("given", "clean"),
    [
        ("http://h:8750", "http://h:8750"),
        ("http://h:8750/", "http://h:8750"),
        ("https://h/api/v1/", "https://h"),
    ],
)
def test_urls_are_normalized(given: str, clean: str) -> None:
    assert normalize_url(given) == clean


def test_a_url_without_scheme_is_refused() -> None:
    with pytest.raises(ConfigError, match="is not a gridvm URL"):
        load_settings("localhost:8750", "gvm_x")


def test_a_token_with_spaces_inside_is_refused() -> None:
    with pytest.raises(ConfigError, match="characters a token cannot have"):
        load_settings("http://h", "gvm_a b")


def test_the_token_never_shows_in_repr() -> None:
    assert "gvm_secret" not in repr(Settings("http://h", "gvm_secret"))


def test_the_saved_token_goes_only_to_the_saved_server(monkeypatch: pytest.MonkeyPatch) -> None:
    save_settings(Settings("http://home:8750", "gvm_file"))
    assert load_settings(url="http://home:8750/") == Settings("http://home:8750", "gvm_file")
    with pytest.raises(ConfigError) as caught:
        load_settings(url="http://elsewhere:8750")
    assert "no gridvm API token configured" in caught.value.message
    assert "the saved token is for http://home:8750" in str(caught.value)


def test_a_client_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDVM_URL", "http://gridvm.example:8750/")
    monkeypatch.setenv("GRIDVM_TOKEN", "gvm_env")
    with Client.from_settings() as gv:
        assert gv.url == "http://gridvm.example:8750"
        assert "gvm_env" not in repr(gv)
