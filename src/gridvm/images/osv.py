"""Matching installed Debian packages against vulnerability records in OSV format.

OSV Debian records name *source* packages (``affected[].package.name``) in ecosystems
``Debian`` (any release) or ``Debian:<major>`` (one release); binary packages are mapped to
their source through dpkg's Source field, and the installed *source* version is compared with
Debian's rules (epochs, tildes: python-debian). Ranges are of type ECOSYSTEM with
``introduced`` (``"0"``: from the start), ``fixed`` and ``last_affected`` events; an explicit
``versions`` list counts too.

Severity: Debian's records often carry none. What we can honestly derive, in this order:
a CVSS v3 base vector in ``severity`` (the base score computed per the CVSS 3.1
specification, then bucketed: <4 low, <7 medium, <9 high, else critical); a textual severity
in ``database_specific.severity`` or ``ecosystem_specific.severity`` (LOW, MODERATE/MEDIUM,
HIGH, CRITICAL); Debian's urgency in ``ecosystem_specific.urgency`` (``unimportant`` counts as
low; "not yet assigned" and others as unknown). Otherwise ``unknown``.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Iterable
from typing import Any

from debian.debian_support import version_compare

from gridvm.schemas.inspection import Severity, severity_rank

MAX_RECORDS = 500_000
MAX_MEMBER_BYTES = 16 * 1024**2


class FeedError(Exception):
    """The feed is not OSV JSON (a record, a list of records) nor a zip of such files."""


def parse_feed(data: bytes) -> list[dict[str, Any]]:
    """The records of a feed: a JSON record, a JSON list, ``{"vulns": [...]}``, or a zip."""
    if data[:4] == b"PK\x03\x04":
        return _parse_zip(data)
    try:
        loaded = json.loads(data)
    except ValueError as exc:
        raise FeedError(f"the feed is neither JSON nor a zip: {exc}") from exc
    return _records(loaded)


def _records(loaded: Any) -> list[dict[str, Any]]:
    if isinstance(loaded, dict) and isinstance(loaded.get("vulns"), list):
        loaded = loaded["vulns"]
    if isinstance(loaded, dict):
        loaded = [loaded]
    if not isinstance(loaded, list):
        raise FeedError("the feed's JSON is not an OSV record or a list of records")
    return [r for r in loaded if isinstance(r, dict) and isinstance(r.get("id"), str)]


def _parse_zip(data: bytes) -> list[dict[str, Any]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise FeedError(f"the feed is not a valid zip: {exc}") from exc
    records: list[dict[str, Any]] = []
    with archive:
        for info in archive.infolist():
            if not info.filename.endswith(".json") or info.file_size > MAX_MEMBER_BYTES:
                continue
            if len(records) >= MAX_RECORDS:
                raise FeedError(f"the feed has more than {MAX_RECORDS} records")
            try:
                records += _records(json.loads(archive.read(info)))
            except (ValueError, FeedError):
                continue  # one bad member does not spoil the feed
    return records


# --- severity ----------------------------------------------------------------------

_AV = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}
_AC = {"L": 0.77, "H": 0.44}
_UI = {"N": 0.85, "R": 0.62}
_CIA = {"H": 0.56, "L": 0.22, "N": 0.0}


def _roundup(value: float) -> float:
    scaled = round(value * 100000)
    return scaled / 100000.0 if scaled % 10000 == 0 else (math.floor(scaled / 10000) + 1) / 10.0


def cvss3_base_score(vector: str) -> float | None:
    """The CVSS 3.0/3.1 base score of ``vector``; None if it is not a complete v3 vector."""
    if not vector.startswith(("CVSS:3.0/", "CVSS:3.1/")):
        return None
    metrics = dict(p.split(":", 1) for p in vector.split("/")[1:] if ":" in p)
    try:
        changed = metrics["S"] == "C"
        pr = {"N": 0.85, "L": 0.68 if changed else 0.62, "H": 0.5 if changed else 0.27}
        iss = 1 - ((1 - _CIA[metrics["C"]]) * (1 - _CIA[metrics["I"]]) * (1 - _CIA[metrics["A"]]))
        exploitability = (
            8.22 * _AV[metrics["AV"]] * _AC[metrics["AC"]] * pr[metrics["PR"]] * _UI[metrics["UI"]]
        )
    except KeyError:
        return None
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    if impact <= 0:
        return 0.0
    total = 1.08 * (impact + exploitability) if changed else impact + exploitability
    return _roundup(min(total, 10.0))


def bucket(score: float) -> Severity:
    if score >= 9.0:
        return Severity.critical
    if score >= 7.0:
        return Severity.high
    if score >= 4.0:
        return Severity.medium
    return Severity.low


_WORDS = {
    "low": Severity.low,
    "unimportant": Severity.low,
    "moderate": Severity.medium,
    "medium": Severity.medium,
    "high": Severity.high,
    "important": Severity.high,
    "critical": Severity.critical,
}


def severity_of(record: dict[str, Any], affected: dict[str, Any]) -> Severity:
    found: list[Severity] = []
    for item in list(record.get("severity") or []) + list(affected.get("severity") or []):
        if isinstance(item, dict) and isinstance(item.get("score"), str):
            score = cvss3_base_score(item["score"])
            if score is not None:
                found.append(bucket(score))
    if found:
        return max(found, key=severity_rank)
    for holder in (
        record.get("database_specific"),
        affected.get("ecosystem_specific"),
        affected.get("database_specific"),
    ):
        if isinstance(holder, dict):
            for key in ("severity", "urgency"):
                word = holder.get(key)
                if isinstance(word, str) and word.strip().lower() in _WORDS:
                    return _WORDS[word.strip().lower()]
    return Severity.unknown


# --- matching ------------------------------------------------------------------------


def _ecosystem_applies(ecosystem: str, release: str | None) -> bool:
    """``Debian`` applies to any Debian image; ``Debian:12`` to Debian 12 only."""
    name, _, version = ecosystem.partition(":")
    if name != "Debian":
        return False
    if not version:
        return True
    return release is not None and version.split(".")[0] == release


def debian_release(os_id: str | None, os_version: str | None) -> str | None:
    """``"12"`` for a Debian 12 image; None for another or an unknown OS."""
    if os_id != "debian" or not os_version:
        return None
    return os_version.split(".")[0]


def _cmp(a: str, b: str) -> int:
    if a == "0":
        return 0 if b == "0" else -1
    if b == "0":
        return 1
    return version_compare(a, b)


def affected_by_range(version: str, events: list[dict[str, Any]]) -> tuple[bool, str | None]:
    """Whether ``version`` lies in the range of ``events``, and the fixed version if any."""
    points: list[tuple[str, str]] = []
    for event in events:
        if not isinstance(event, dict):
            continue
        for kind in ("introduced", "fixed", "last_affected"):
            value = event.get(kind)
            if isinstance(value, str):
                points.append((kind, value))
    affected = False
    fixed: str | None = None
    order = {"introduced": 0, "last_affected": 1, "fixed": 2}
    for kind, value in sorted(points, key=_SortKey.of(order)):
        if kind == "introduced" and _cmp(version, value) >= 0:
            affected = True
        elif (kind == "fixed" and _cmp(version, value) >= 0) or (
            kind == "last_affected" and _cmp(version, value) > 0
        ):
            affected = False
        if kind == "fixed" and _cmp(version, value) < 0 and fixed is None:
            fixed = value
    return affected, fixed


class _SortKey:
    """Sort events by Debian version order (``"0"`` first), then by kind."""

    def __init__(self, point: tuple[str, str], order: dict[str, int]) -> None:
        self.kind, self.value = point
        self.rank = order[self.kind]

    @staticmethod
    def of(order: dict[str, int]) -> Any:
        return lambda point: _SortKey(point, order)

    def __lt__(self, other: _SortKey) -> bool:
        c = _cmp(self.value, other.value)
        return c < 0 if c != 0 else self.rank < other.rank


def match(
    packages: Iterable[dict[str, Any]],
    records: Iterable[dict[str, Any]],
    release: str | None,
) -> list[dict[str, Any]]:
    """The vulnerabilities of the installed ``packages`` (deb only) found in ``records``."""
    by_source: dict[str, list[dict[str, Any]]] = {}
    for package in packages:
        if package.get("kind") == "deb":
            by_source.setdefault(str(package["source"]), []).append(package)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        if record.get("withdrawn"):
            continue
        for affected in record.get("affected") or []:
            if not isinstance(affected, dict):
                continue
            pkg = affected.get("package") or {}
            if not isinstance(pkg, dict):
                continue
            binaries = by_source.get(str(pkg.get("name")))
            if not binaries or not _ecosystem_applies(str(pkg.get("ecosystem", "")), release):
                continue
            for binary in binaries:
                hit = _affects(affected, str(binary["source_version"]))
                if hit is None:
                    continue
                key = (str(record["id"]), str(binary["name"]))
                summary = record.get("summary") or str(record.get("details") or "")
                found[key] = {
                    "id": str(record["id"]),
                    "package": str(binary["name"]),
                    "source": str(binary["source"]),
                    "installed": str(binary["version"]),
                    "fixed": hit[1],
                    "severity": severity_of(record, affected).value,
                    "summary": str(summary).strip().splitlines()[0][:200] if summary else "",
                    "aliases": [str(a) for a in record.get("aliases") or []]
                    + [str(u) for u in record.get("upstream") or []],
                }
    return sorted(
        found.values(),
        key=lambda v: (-severity_rank(v["severity"]), v["package"], v["id"]),
    )


def _affects(affected: dict[str, Any], version: str) -> tuple[bool, str | None] | None:
    versions = affected.get("versions") or []
    fixed: str | None = None
    hit = version in versions
    for rng in affected.get("ranges") or []:
        if not isinstance(rng, dict) or rng.get("type") != "ECOSYSTEM":
            continue
        in_range, range_fixed = affected_by_range(version, list(rng.get("events") or []))
        if in_range:
            hit = True
            fixed = fixed or range_fixed
    return (True, fixed) if hit else None
