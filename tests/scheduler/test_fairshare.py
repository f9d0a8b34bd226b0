from __future__ import annotations

import pytest

from gridvm.scheduler import FairShareAlgorithm, decay, fairshare_factors
from gridvm.scheduler.fairshare import classic_factors, fair_tree_factors, normalised_shares


def test_usage_halves_every_half_life() -> None:
    assert decay(1000.0, 3600, 3600) == pytest.approx(500.0)
    assert decay(1000.0, 7200, 3600) == pytest.approx(250.0)
    assert decay(1000.0, 0, 3600) == 1000.0
    assert decay(1000.0, 10, 0) == 0.0


def test_shares_are_normalised_down_the_tree() -> None:
    shares = {"physics": 3, "physics/cms": 1, "physics/atlas": 3, "bio": 1}
    norm = normalised_shares(shares)
    assert norm["physics"] == pytest.approx(0.75)
    assert norm["bio"] == pytest.approx(0.25)
    assert norm["physics/atlas"] == pytest.approx(0.75 * 0.75)
    assert norm["physics/cms"] == pytest.approx(0.75 * 0.25)


def test_classic_factor_is_two_to_minus_usage_over_share() -> None:
    shares = {"a": 1, "b": 1}
    factors = classic_factors(shares, {"a": 50, "b": 50})  # each used exactly its share
    assert factors == {"a": pytest.approx(0.5), "b": pytest.approx(0.5)}
    factors = classic_factors(shares, {"a": 100})
    assert factors["a"] == pytest.approx(0.25)  # 2^(-1/0.5)
    assert factors["b"] == 1.0  # unused
    assert classic_factors(shares, {}) == {"a": 1.0, "b": 1.0}


def test_a_sub_groups_usage_counts_against_its_parent() -> None:
    shares = {"physics": 1, "physics/cms": 1, "bio": 1}
    factors = classic_factors(shares, {"physics/cms": 10.0})
    assert factors["physics"] < factors["bio"] == 1.0


def test_fair_tree_ranks_the_under_served_group_first() -> None:
    shares = {"a": 50, "b": 30, "c": 20}
    factors = fair_tree_factors(shares, {"a": 900, "b": 50, "c": 50})
    # c: 20% of shares for 5% of the usage; b: 30% for 5%; a: 50% for 90%.
    assert factors["b"] > factors["c"] > factors["a"]
    both = fairshare_factors(FairShareAlgorithm.fair_tree, shares, {})
    assert max(both.values()) == 1.0


def test_fair_tree_keeps_a_sub_tree_together() -> None:
    shares = {"p": 1, "p/x": 1, "p/y": 1, "q": 1}
    factors = fair_tree_factors(shares, {"p/x": 10, "q": 100})
    # p (less used) and its children rank above q.
    assert min(factors["p"], factors["p/x"], factors["p/y"]) > factors["q"]
    assert factors["p/y"] > factors["p/x"]
