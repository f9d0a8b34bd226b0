"""``gridvm login``, ``whoami``, ``logout`` and the configuration they rely on."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.cli.conftest import Cli
from tests.servers import free_port


def test_login_checks_the_token_then_saves_it_privately(cli: Cli, tmp_path: Path) -> None:
    token_file = tmp_path / "admin.token"
    token_file.write_text(cli.server.admin_token + "\n")
    result = cli.ok("login", cli.server.url, "--token-file", str(token_file), url=None, token=None)
    assert f"logged in to {cli.server.url} as admin (admin; groups: admins)" in result.stdout
    assert cli.server.admin_token not in result.output
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.config.parent.stat().st_mode) == 0o700
    assert json.loads(cli.config.read_text()) == {
        "url": cli.server.url,
        "token": cli.server.admin_token,
    }
    # Later commands need neither --url nor --token.
    assert "admin (admin; groups: admins) on" in cli.ok("whoami", url=None, token=None).stdout
    assert cli.json("whoami", url=None, token=None)["name"] == "admin"

    assert "logged out" in cli.ok("logout", url=None, token=None).stdout
    assert not cli.config.exists()


def test_a_bad_token_is_refused_and_not_saved(cli: Cli) -> None:
    line = cli.fails("login", cli.server.url, "--token", "gvm_wrong", url=None, token=None)
    assert line.startswith("error: the API token is not valid")
    assert not cli.config.exists()


def test_without_url_or_token_the_error_says_how_to_log_in(cli: Cli) -> None:
    line = cli.fails("image", "list", url=None, token=None)
    assert "no gridvm URL and no API token configured" in line
    assert "gridvm login URL --token-file FILE" in line
    line = cli.fails("vm", "list", token=None)
    assert "no gridvm API token configured" in line


def test_root_options_beat_the_environment(cli: Cli) -> None:
    result = cli.ok(
        "--url",
        cli.server.url,
        "--token",
        cli.server.admin_token,
        "whoami",
        url="http://127.0.0.1:1",
        token="gvm_other",
    )
    assert result.stdout.startswith("admin ")


def test_an_unreachable_server_is_one_clear_line(cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    line = cli.fails("whoami", url=url)
    assert line.startswith(f"error: cannot reach gridvm at {url}: ")
    assert "is the server running?" in line


def test_a_missing_token_file_is_one_clear_line(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "nope.token"
    line = cli.fails("login", cli.server.url, "--token-file", str(missing))
    assert line == f"error: {missing}: No such file or directory"
