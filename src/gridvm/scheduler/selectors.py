"""Label selectors: what a VM asks of a host's labels, parsed without ``eval``.

A selector is clauses joined by ``,`` (all must hold)::

    site in (a, b)          label is one of the values
    site notin (c)          label is missing or none of the values
    cpu_flags contains avx2 label, a comma- or space-separated list, holds the word
    mem_gb >= 64            numeric comparison: < <= > >= (a missing or non-numeric label fails)
    gpu = yes, os != el7    equality (string)
    ssd                     the label exists
    !ssd                    the label does not exist
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gridvm.common.errors import InvalidInput

Labels = Mapping[str, str]

_KEY = r"[A-Za-z_][A-Za-z0-9_./-]{0,62}"
_VALUE = r"[A-Za-z0-9_.:/+-]{1,128}"
_SET = rf"\(\s*{_VALUE}(?:\s*,\s*{_VALUE})*\s*\)"
_CLAUSE = re.compile(
    rf"\s*(?:(?P<neg>!)\s*(?P<absent>{_KEY})"
    rf"|(?P<key>{_KEY})\s*(?:(?P<setop>in|notin)\s*(?P<set>{_SET})"
    rf"|(?P<contains>contains)\s+(?P<word>{_VALUE})"
    rf"|(?P<cmp><=|>=|<|>|!=|=)\s*(?P<value>{_VALUE}))?)\s*(?:,|$)"
)
HINT = "e.g. 'site in (a,b), cpu_flags contains avx2, mem_gb >= 64'"


@dataclass(frozen=True)
class Clause:
    text: str
    test: Callable[[Labels], bool]

    def __call__(self, labels: Labels) -> bool:
        return self.test(labels)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _compare(key: str, op: str, value: str) -> Callable[[Labels], bool]:
    if op == "=":
        return lambda labels: labels.get(key) == value
    if op == "!=":
        return lambda labels: labels.get(key) != value
    limit = _number(value)
    if limit is None:
        raise InvalidInput(f"{key} {op} {value}: {op} compares numbers", hint=HINT)
    ops: dict[str, Callable[[float, float], bool]] = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    check = ops[op]

    def test(labels: Labels) -> bool:
        have = _number(labels.get(key))
        return have is not None and check(have, limit)

    return test


def _words(text: str | None) -> set[str]:
    return set(re.split(r"[,\s]+", text.strip())) if text else set()


def _absent(key: str, labels: Labels) -> bool:
    return key not in labels


def _present(key: str, labels: Labels) -> bool:
    return key in labels


def _in(key: str, values: frozenset[str], labels: Labels) -> bool:
    return labels.get(key) in values


def _not_in(key: str, values: frozenset[str], labels: Labels) -> bool:
    return labels.get(key) not in values


def _contains(key: str, word: str, labels: Labels) -> bool:
    return word in _words(labels.get(key))


def _test_of(match: re.Match[str]) -> Callable[[Labels], bool]:
    if match["absent"]:
        return functools.partial(_absent, match["absent"])
    key = match["key"]
    if match["setop"]:
        values = frozenset(v.strip() for v in match["set"].strip("() ").split(","))
        return functools.partial(_in if match["setop"] == "in" else _not_in, key, values)
    if match["contains"]:
        return functools.partial(_contains, key, match["word"])
    if match["cmp"]:
        return _compare(key, match["cmp"], match["value"])
    return functools.partial(_present, key)


@functools.lru_cache(maxsize=1024)
def parse_selector(text: str) -> tuple[Clause, ...]:
    """The clauses of ``text``; raises InvalidInput naming the part it cannot read."""
    clauses: list[Clause] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _CLAUSE.match(text, position)
        if match is None or match.end() == position:
            rest = text[position:].split(",")[0].strip()
            raise InvalidInput(f"cannot read the label selector at {rest!r}", hint=HINT)
        part = match.group(0).strip().rstrip(",").strip()
        clauses.append(Clause(part, _test_of(match)))
        position = match.end()
    return tuple(clauses)


def matches(selector: str, labels: Labels) -> bool:
    return all(clause(labels) for clause in parse_selector(selector))
