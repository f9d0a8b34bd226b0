"""``gridvm server``, ``gridvm agent``, ``gridvm up`` and ``gridvm down``."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from gridvm.common.config import (
    DEFAULT_ZONE_SUBNETS,
    AgentConfig,
    ImagePolicySettings,
    SchedulingSettings,
    ServerConfig,
    SiteLimits,
)
from gridvm.common.errors import GridvmError
from gridvm.common.logs import setup_logging
from gridvm.common.units import parse_duration, parse_size
from gridvm.daemons.addresses import parse_listen

DataDir = Annotated[Path, typer.Option("--data-dir", help="where state, images and logs live")]
Listen = Annotated[str, typer.Option("--listen", help="HOST:PORT of the API")]
StarterDir = Annotated[
    Path | None,
    typer.Option(
        "--starter-dir", help="built starter images to register (default ./build/starter)"
    ),
]
Cores = Annotated[
    int | None, typer.Option("--cores", help="cores this host offers VMs (default: all)")
]
Memory = Annotated[
    str | None, typer.Option("--memory", help="memory this host offers VMs, e.g. 16G")
]


Network = Annotated[
    str,
    typer.Option(
        "--network",
        help="user: QEMU user-mode networking; site: a bridge per zone, a tap per VM and "
        "nftables rules (needs root, iproute2, nftables)",
    ),
]
Uplink = Annotated[
    str | None,
    typer.Option(
        "--uplink",
        help="site networking: interface VM traffic is masqueraded out of "
        "(default: the default route's)",
    ),
]
ZoneEgress = Annotated[
    list[str] | None,
    typer.Option(
        "--zone-egress",
        metavar="ZONE=ADDRESS|CIDR:PORT[/udp]",
        help="site networking: an egress entry every VM of the zone gets (repeatable), "
        "e.g. trusted=10.0.0.53:53/udp",
    ),
]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _starter_dir(given: Path | None) -> Path | None:
    if given is not None:
        return given
    default = Path("build/starter")
    return default.resolve() if default.is_dir() else None


def _labels(specs: list[str]) -> dict[str, str]:
    labels = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_./-]{0,62}", key) or not value:
            raise GridvmError(f"--label {spec!r}: expected KEY=VALUE, e.g. site=a")
        labels[key] = value
    return labels


def _zones(names: list[str]) -> tuple[str, ...]:
    for name in names:
        if name not in ("trusted", "dmz"):
            raise GridvmError(f"--zone {name!r}: the zones are trusted and dmz")
    return tuple(sorted(set(names)))


def _zone_egress(items: list[str]) -> dict[str, tuple[str, ...]]:
    """--zone-egress ZONE=ENTRY (repeatable), grouped by zone and checked."""
    from gridvm.services.egress import check_zone_egress

    grouped: dict[str, list[str]] = {}
    for item in items:
        zone, sep, entry = item.partition("=")
        if not sep or not entry:
            raise GridvmError(
                f"--zone-egress {item!r}: write ZONE=ADDRESS:PORT, e.g. trusted=10.0.0.53:53/udp"
            )
        grouped.setdefault(zone, []).append(entry)
    return check_zone_egress(grouped)


def _network_mode(text: str) -> str:
    if text not in ("user", "site"):
        raise GridvmError(f"--network {text!r}: choose user or site")
    return text


def _zone_subnets(items: list[str]) -> dict[str, str]:
    """--zone-subnet ZONE=CIDR (repeatable) over the defaults; checked by the agent."""
    subnets = dict(DEFAULT_ZONE_SUBNETS)
    for item in items:
        zone, sep, cidr = item.partition("=")
        if not sep or zone not in ("trusted", "dmz") or not cidr:
            raise GridvmError(
                f"--zone-subnet {item!r}: write ZONE=CIDR with ZONE trusted or dmz, "
                "e.g. trusted=10.64.0.0/24"
            )
        subnets[zone] = cidr
    return subnets


def _memory_mb(text: str | None) -> int | None:
    return None if text is None else parse_size(text, default_unit="M") // (1024 * 1024)


def _server_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """--config FILE: its options become the defaults of the other options (see
    gridvm.daemons.server_config); read before them, so the command line wins."""
    from gridvm.daemons.server_config import load_defaults

    if value is not None:
        try:
            defaults = load_defaults(value, server)
        except GridvmError as exc:
            _fail(str(exc))
        ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def server(
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file of server options (keys: the option names; the zone whitelists"
            " as a zone_egress table); options on the command line win",
            callback=_server_config,
            is_eager=True,
        ),
    ] = None,
    data_dir: DataDir = Path(".gridvm"),
    listen: Listen = "127.0.0.1:8750",
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="SQLAlchemy URL (default: SQLite file)")
    ] = None,
    starter_dir: StarterDir = None,
    stop_grace: Annotated[int, typer.Option(help="seconds a VM gets to power off")] = 30,
    fairshare: Annotated[
        str, typer.Option("--fairshare", help="fair-share algorithm: classic or fair-tree")
    ] = "classic",
    half_life: Annotated[
        str, typer.Option("--half-life", help="fair-share usage halves in this time, e.g. 7d")
    ] = "7d",
    pack: Annotated[
        bool, typer.Option("--pack/--spread", help="fill hosts one by one, or spread VMs")
    ] = False,
    backfill: Annotated[
        bool,
        typer.Option(
            "--backfill/--no-backfill",
            help="let short VMs start ahead when they cannot delay the first waiting VM",
        ),
    ] = True,
    block_severity: Annotated[
        str,
        typer.Option(
            "--block-severity",
            help="images with a vulnerability this severe or worse are neither certified nor"
            " deployed: low, medium, high or critical",
        ),
    ] = "high",
    endorser_cert: Annotated[
        Path | None,
        typer.Option(
            "--endorser-cert",
            help="X.509 certificate (PEM) that signs the site's image list"
            " (default: one made in the data dir, under endorser/)",
        ),
    ] = None,
    endorser_key: Annotated[
        Path | None, typer.Option("--endorser-key", help="its private key (PEM)")
    ] = None,
    publish_image_list: Annotated[
        bool,
        typer.Option(
            "--publish-image-list/--no-publish-image-list",
            help="serve the signed image list and its images to other sites without a token",
        ),
    ] = False,
    public_url: Annotated[
        str | None,
        typer.Option("--public-url", help="the URL other sites reach this server at"),
    ] = None,
    vuln_feed: Annotated[
        str | None,
        typer.Option(
            "--vuln-feed",
            help="vulnerability feed in OSV format (Debian): a file or http(s) URL, JSON or zip",
        ),
    ] = None,
    vuln_feed_interval: Annotated[
        str,
        typer.Option("--vuln-feed-interval", help="how often to check the feed for changes"),
    ] = "5m",
    certified_repo: Annotated[
        list[str] | None,
        typer.Option(
            "--certified-repo",
            help="a Debian archive whose packages keep a recipe build certified (repeatable;"
            " default: the configured mirror, $GRIDVM_DEBIAN_MIRROR or deb.debian.org)",
        ),
    ] = None,
    build_workers: Annotated[
        int, typer.Option("--build-workers", help="recipe builds run at the same time")
    ] = 1,
    build_cache_max_mb: Annotated[
        int,
        typer.Option(
            "--build-cache-max-mb",
            help="MiB of downloaded .debs kept for later recipe builds (<data>/build-cache;"
            " least recently used evicted first); 0 disables the cache",
        ),
    ] = 2048,
    zone_egress: ZoneEgress = None,
    allow_wide_egress: Annotated[
        bool,
        typer.Option(
            "--allow-wide-egress",
            help="let users whitelist networks wider than /8 (0.0.0.0/0 included)",
        ),
    ] = False,
) -> None:
    """Run the control plane: REST API, scheduler and lease loops."""
    from gridvm.daemons.processes import run_server

    setup_logging()
    try:
        host, port = parse_listen(listen)
        config = ServerConfig(
            data_dir=data_dir.resolve(),
            database_url=database_url,
            host=host,
            port=port,
            starter_dir=_starter_dir(starter_dir),
            limits=SiteLimits(
                stop_grace_s=stop_grace,
                zone_egress=_zone_egress(zone_egress or []),
                egress_allow_wide=allow_wide_egress,
            ),
            scheduling=SchedulingSettings(
                fairshare=fairshare,
                half_life_s=parse_duration(half_life),
                pack=pack,
                backfill=backfill,
            ),
            images=ImagePolicySettings(
                block_severity=block_severity,
                endorser_cert=endorser_cert,
                endorser_key=endorser_key,
                publish_image_list=publish_image_list,
                public_url=public_url,
            ),
            vuln_feed=vuln_feed,
            vuln_feed_interval_s=parse_duration(vuln_feed_interval),
            build_workers=build_workers,
            build_cache_max_mb=build_cache_max_mb,
        )
        if certified_repo:
            config = dataclasses.replace(config, certified_repositories=tuple(certified_repo))
        run_server(config)
    except GridvmError as exc:
        _fail(
            f"{exc} (options from {config_file} and the command line)" if config_file else str(exc)
        )


def agent(
    server_url: Annotated[str, typer.Option("--server", help="URL of the gridvm server")],
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="file holding the agent token")
    ] = None,
    data_dir: DataDir = Path(".gridvm/agent"),
    name: Annotated[str | None, typer.Option("--name", help="host name")] = None,
    cores: Cores = None,
    memory: Memory = None,
    cache_size: Annotated[str, typer.Option(help="image cache limit")] = "20G",
    poll_interval: Annotated[float, typer.Option(help="seconds between syncs")] = 1.0,
    qemu_binary: Annotated[
        str, typer.Option(help="QEMU system emulator to run VMs with")
    ] = "qemu-system-x86_64",
    zone: Annotated[
        list[str] | None,
        typer.Option("--zone", help="a network zone this host serves: trusted, dmz (default both)"),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            metavar="KEY=VALUE",
            help="a host label VMs can ask for (--require), e.g. site=a, cpu_flags=avx2,sse4",
        ),
    ] = None,
    network: Network = "site",
    zone_subnet: Annotated[
        list[str] | None,
        typer.Option(
            "--zone-subnet",
            metavar="ZONE=CIDR",
            help="site networking: this host's subnet of a zone "
            "(default trusted=10.64.0.0/24, dmz=10.65.0.0/24)",
        ),
    ] = None,
    uplink: Uplink = None,
) -> None:
    """Run the host agent: registers this host and runs the VMs the server assigns to it."""
    from gridvm.daemons.processes import run_agent

    setup_logging()
    token = os.environ.get("GRIDVM_AGENT_TOKEN")
    if token_file is not None:
        token = token_file.read_text().strip()
    if not token:
        _fail("no agent token: pass --token-file or set GRIDVM_AGENT_TOKEN")
    assert token is not None
    if network == "site" and os.geteuid() != 0:
        _fail(
            "site networking (the agent's default) needs root: it makes a bridge per zone, "
            "a tap per VM and nftables rules. Run the agent as root, or pass --network user "
            "for QEMU user-mode networking (VMs are then not isolated by the host's rules)"
        )
    try:
        config = AgentConfig(
            server_url=server_url,
            token=token,
            data_dir=data_dir.resolve(),
            host_name=name or socket.gethostname().split(".")[0],
            cores=cores,
            memory_mb=_memory_mb(memory),
            cache_limit_bytes=parse_size(cache_size),
            poll_interval_s=poll_interval,
            qemu_binary=qemu_binary,
            labels=_labels(label or []),
            zones=_zones(zone or ["trusted", "dmz"]),
            network=_network_mode(network),
            zone_subnets=_zone_subnets(zone_subnet or []),
            uplink=uplink,
        )
        run_agent(config)
    except GridvmError as exc:
        _fail(str(exc))


def up(
    data_dir: DataDir = Path(".gridvm"),
    listen: Listen = "127.0.0.1:8750",
    starter_dir: StarterDir = None,
    cores: Cores = None,
    memory: Memory = None,
    detach: Annotated[
        bool, typer.Option(help="run in the background; stop with gridvm down")
    ] = False,
    vuln_feed: Annotated[
        str | None,
        typer.Option("--vuln-feed", help="vulnerability feed in OSV format: a file or URL"),
    ] = None,
    network: Network = "user",
    uplink: Uplink = None,
    zone_egress: ZoneEgress = None,
) -> None:
    """Server and one local agent with SQLite: the one-machine cloud (--network site: its
    VMs on site networking, which needs root)."""
    from gridvm.daemons.processes import run_up

    data_dir = data_dir.resolve()
    try:
        host, port = parse_listen(listen)
    except GridvmError as exc:
        _fail(str(exc))
        return
    try:
        mode = _network_mode(network)
        limits = SiteLimits(zone_egress=_zone_egress(zone_egress or []))
    except GridvmError as exc:
        _fail(str(exc))
    url = f"http://{host}:{port}"
    if detach:
        _detach(data_dir, url)
        return
    setup_logging()
    server_config = ServerConfig(
        data_dir=data_dir,
        host=host,
        port=port,
        starter_dir=_starter_dir(starter_dir),
        vuln_feed=vuln_feed,
        limits=limits,
    )
    agent_config = AgentConfig(
        server_url=url,
        token="",
        data_dir=data_dir / "agent",
        host_name=socket.gethostname().split(".")[0],
        cores=cores,
        memory_mb=_memory_mb(memory),
        network=mode,
        uplink=uplink,
    )
    typer.echo(f"gridvm is starting at {url} (API docs: {url}/api/v1/docs)")
    typer.echo(f"admin token: {server_config.admin_token_file}")
    run_up(server_config, agent_config)


def _detach(data_dir: Path, url: str) -> None:
    from gridvm.daemons.processes import wait_healthy

    data_dir.mkdir(parents=True, exist_ok=True)
    pid_file = data_dir / "gridvm.pid"
    if pid_file.exists() and _alive(int(pid_file.read_text())):
        typer.echo(f"gridvm is running already (pid {pid_file.read_text().strip()}) at {url}")
        return
    argv = [a for a in sys.argv[1:] if a != "--detach"]
    log_path = data_dir / "gridvm.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gridvm.main", *argv],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    pid_file.write_text(f"{process.pid}\n")
    if not wait_healthy(url, timeout=90):
        _fail(f"gridvm did not come up at {url}; see {log_path}")
    typer.echo(f"gridvm is up at {url} (API docs: {url}/api/v1/docs)")
    typer.echo(f"admin token: {data_dir / 'admin.token'}  (gridvm login {url} --token-file ...)")
    typer.echo(f"log: {log_path}; stop it with: gridvm down --data-dir {data_dir}")


def down(data_dir: DataDir = Path(".gridvm")) -> None:
    """Stop a gridvm started with ``gridvm up --detach`` (its VMs keep running)."""
    pid_file = data_dir.resolve() / "gridvm.pid"
    if not pid_file.exists():
        _fail(f"no {pid_file}: gridvm is not running from {data_dir}")
    pid = int(pid_file.read_text())
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    pid_file.unlink(missing_ok=True)
    typer.echo("gridvm stopped")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def host_rules() -> None:
    """Print this host's live gridvm network rules (nftables), as the kernel holds them.

    Run it on the host, as root: the rule set is the agent's, applied in the host's
    kernel, and reading it there shows what is in force rather than what should be."""
    from gridvm.network.nft import Nft

    try:
        text = Nft().live_text()
    except GridvmError as exc:
        _fail(str(exc))
        return
    if not text:
        _fail(
            "no gridvm rules on this host (or no permission to read them: run as root); "
            "the agent applies them when it runs with --network site"
        )
    typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    for command in (server, agent, up, down):
        app.command(command.__name__)(command)
    app.command("host-rules")(host_rules)
