"""Fair share over the tree of groups (VOs and sub-groups): shares set by admins, usage
in core-seconds decayed with a half-life, and the factor the priority takes from them.

Paths name the tree: ``physics`` and ``physics/cms`` (a sub-group). A group's usage
counts for it and every group above it. Two ways to turn shares and usage into a
factor in [0, 1] (higher: served first):

- classic (Slurm's classic fair share): ``F = 2^(-U/S)`` with ``S`` the group's
  normalised share (its fraction of its siblings' shares, times its parent's) and
  ``U`` its fraction of all usage. At its share, F = 0.5; unused, 1.
- fair-tree (Slurm's Fair Tree): siblings are ordered by level fair share
  ``(share / siblings' shares) / (usage / siblings' usage)``; a depth-first walk in
  that order ranks every group, and F falls linearly with the rank.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from gridvm.scheduler.policy import FairShareAlgorithm


def decay(usage: float, elapsed_s: float, half_life_s: float) -> float:
    """``usage`` after ``elapsed_s`` seconds of halving every ``half_life_s``."""
    if half_life_s <= 0:
        return 0.0
    return usage * math.pow(2.0, -max(0.0, elapsed_s) / half_life_s)


def parent_of(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def complete_tree(shares: Mapping[str, float]) -> dict[str, float]:
    """Every group and every group above one, with a share (1 where none is set)."""
    tree = dict(shares)
    for path in list(shares):
        parent = parent_of(path)
        while parent and parent not in tree:
            tree[parent] = 1.0
            parent = parent_of(parent)
    return tree


def _children(tree: Mapping[str, float]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {}
    for path in sorted(tree):
        children.setdefault(parent_of(path), []).append(path)
    return children


def subtree_usage(tree: Mapping[str, float], usage: Mapping[str, float]) -> dict[str, float]:
    total = dict.fromkeys(tree, 0.0)
    for path, used in usage.items():
        node = path
        while node:
            if node in total:
                total[node] += max(0.0, used)
            node = parent_of(node)
    return total


def normalised_shares(tree: Mapping[str, float]) -> dict[str, float]:
    children = _children(tree)
    result: dict[str, float] = {}

    def walk(parent: str, parent_share: float) -> None:
        kids = children.get(parent, [])
        total = sum(max(0.0, tree[k]) for k in kids)
        for kid in kids:
            share = parent_share * (max(0.0, tree[kid]) / total if total > 0 else 0.0)
            result[kid] = share
            walk(kid, share)

    walk("", 1.0)
    return result


def classic_factors(shares: Mapping[str, float], usage: Mapping[str, float]) -> dict[str, float]:
    tree = complete_tree(shares)
    used = subtree_usage(tree, usage)
    roots = [p for p in tree if "/" not in p]
    total = sum(used[r] for r in roots)
    norm = normalised_shares(tree)
    factors = {}
    for path in tree:
        s = norm[path]
        u = used[path] / total if total > 0 else 0.0
        factors[path] = 0.0 if s <= 0 else math.pow(2.0, -u / s)
    return factors


def fair_tree_factors(shares: Mapping[str, float], usage: Mapping[str, float]) -> dict[str, float]:
    tree = complete_tree(shares)
    used = subtree_usage(tree, usage)
    children = _children(tree)
    order: list[str] = []

    def level_fairshare(kid: str, siblings: list[str]) -> float:
        share_total = sum(max(0.0, tree[k]) for k in siblings)
        usage_total = sum(used[k] for k in siblings)
        s = max(0.0, tree[kid]) / share_total if share_total > 0 else 0.0
        u = used[kid] / usage_total if usage_total > 0 else 0.0
        if u == 0:
            return math.inf if s > 0 else 0.0
        return s / u

    def walk(parent: str) -> None:
        kids = children.get(parent, [])
        ranked = sorted(kids, key=lambda k: (-level_fairshare(k, kids), k))
        for kid in ranked:
            order.append(kid)
            walk(kid)

    walk("")
    n = len(order)
    return {path: (n - rank) / n for rank, path in enumerate(order)}


def fairshare_factors(
    algorithm: FairShareAlgorithm, shares: Mapping[str, float], usage: Mapping[str, float]
) -> dict[str, float]:
    if algorithm == FairShareAlgorithm.fair_tree:
        return fair_tree_factors(shares, usage)
    return classic_factors(shares, usage)
