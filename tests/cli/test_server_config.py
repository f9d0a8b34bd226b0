"""``gridvm server --config FILE``: options from a TOML file, the command line winning, and
a bad file refused with the key and the file named before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import gridvm.daemons.processes
import gridvm.main
from gridvm.cli.app import app
from gridvm.common.config import ServerConfig

EXAMPLE = Path(__file__).parents[2] / "examples" / "server.toml"


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[ServerConfig]:
    """The configs the server would have run with (it is not started)."""
    configs: list[ServerConfig] = []
    monkeypatch.setattr(gridvm.daemons.processes, "run_server", configs.append)
    return configs


def _server(tmp_path: Path, text: str, *flags: str) -> tuple[int, str]:
    config = tmp_path / "server.toml"
    config.write_text(text)
    result = CliRunner().invoke(
        app, ["server", "--data-dir", str(tmp_path), "--config", str(config), *flags]
    )
    return result.exit_code, result.stderr


@pytest.mark.usefixtures("logging_restored")
def test_the_files_options_reach_the_server_and_the_command_line_wins(
    tmp_path: Path, started: list[ServerConfig]
) -> None:
    text = """
listen = "127.0.0.1:8799"
build-workers = 3
pack = true
stop_grace = 5
half_life = "1d"

[zone_egress]
trusted = ["10.0.0.53:53/udp", "192.0.2.10:443"]
dmz = []
"""
    assert _server(tmp_path, text) == (0, "")
    config = started.pop()
    assert (config.port, config.build_workers, config.scheduling.pack) == (8799, 3, True)
    assert (config.limits.stop_grace_s, config.scheduling.half_life_s) == (5, 86400)
    # dmz = [] lists nothing: the zone's VMs get no site entries.
    assert config.limits.zone_egress == {"trusted": ("10.0.0.53:53/udp", "192.0.2.10:443")}
    code, _ = _server(
        tmp_path, text, "--build-workers", "2", "--spread", "--zone-egress", "dmz=10.9.0.1:80"
    )
    assert code == 0
    config = started.pop()
    assert (config.port, config.build_workers, config.scheduling.pack) == (8799, 2, False)
    # A repeatable option on the command line replaces the file's list.
    assert config.limits.zone_egress == {"dmz": ("10.9.0.1:80",)}


@pytest.mark.usefixtures("logging_restored")
def test_the_example_file_is_a_valid_config(tmp_path: Path, started: list[ServerConfig]) -> None:
    result = CliRunner().invoke(
        app, ["server", "--data-dir", str(tmp_path), "--config", str(EXAMPLE)]
    )
    assert result.exit_code == 0, result.stderr
    assert started[0].limits.zone_egress["trusted"]


@pytest.mark.usefixtures("logging_restored")
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus = 1", "server.toml: unknown key 'bogus'; the keys are the options of gridvm"),
        ("config = 'x.toml'", "unknown key 'config'"),
        ("build_workers = '2'", "server.toml: build_workers must be a whole number, not '2'"),
        ("pack = 'yes'", "server.toml: pack must be true or false, not 'yes'"),
        ("listen = 8750", "server.toml: listen must be a string, not 8750"),
        ("certified-repo = 'http://a/debian'", "certified-repo must be a list of strings"),
        ("zone_egress = ['trusted=10.0.0.53:53']", "zone_egress must be a table of zone"),
        ("[zone_egress]\nlab = ['10.0.0.53:53']", "zone_egress: zone egress for 'lab'"),
        ("[zone_egress]\ndmz = ['10.0.0.53']", "zone_egress: egress entry '10.0.0.53' is not"),
        ("listen = ", "server.toml is not valid TOML"),
        ("half_life = 'soon'", "'soon' is not a duration"),
    ],
)
def test_a_bad_config_file_stops_the_server_with_the_key_and_the_file(
    text: str, message: str, tmp_path: Path, started: list[ServerConfig]
) -> None:
    code, stderr = _server(tmp_path, text)
    assert code == 1
    assert message in stderr
    assert str(tmp_path / "server.toml") in stderr
    assert started == []


@pytest.mark.usefixtures("logging_restored")
def test_a_missing_config_file_is_named(tmp_path: Path, started: list[ServerConfig]) -> None:
    missing = tmp_path / "nope.toml"
    result = CliRunner().invoke(app, ["server", "--config", str(missing)])
    assert result.exit_code == 1
    assert f"cannot read the server config {missing}: No such file or directory" in result.stderr
    assert started == []


@pytest.mark.usefixtures("logging_restored")
def test_the_build_cache_limit_comes_from_the_file_or_the_command_line(
    tmp_path: Path, started: list[ServerConfig]
) -> None:
    assert _server(tmp_path, "build-cache-max-mb = 500\n") == (0, "")
    assert started.pop().build_cache_max_mb == 500
    assert _server(tmp_path, "build_cache_max_mb = 500\n", "--build-cache-max-mb", "0")[0] == 0
    assert started.pop().build_cache_max_mb == 0
    code, error = _server(tmp_path, 'build_cache_max_mb = "lots"\n')
    assert code == 1 and "build_cache_max_mb must be a whole number" in error
