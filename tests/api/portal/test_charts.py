"""The inline SVG chart, from literal series: well-formed, one group per series, labelled,
accessible, and group names escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from gridvm.api.portal.charts import Series, nice_ticks, number, stacked_bars

SVG = "{http://www.w3.org/2000/svg}"


def chart(series: list[Series], labels: list[str] | None = None) -> ET.Element:
    text = stacked_bars(
        chart_id="usage-chart",
        title="Core-hours per group per day",
        labels=labels or ["Mar 08", "Mar 09", "Mar 10"],
        series=series,
        unit="core-hours",
    )
    return ET.fromstring(str(text))


def test_one_coloured_group_of_bars_per_series_with_legend_and_axis_labels() -> None:
    svg = chart([Series("physics", [8, 0, 2.5]), Series("bio", [1, 1, 0])])
    assert svg.get("id") == "usage-chart" and svg.get("role") == "img"
    groups = svg.findall(f"{SVG}g[@class='series']")
    assert [g.get("data-series") for g in groups] == ["physics", "bio"]
    assert groups[0].get("fill") != groups[1].get("fill")
    # A bar for each non-zero value, each with its figure as a tooltip.
    assert len(groups[0].findall(f"{SVG}rect")) == 2
    tips = [t.text for t in groups[0].iter(f"{SVG}title")]
    assert tips == ["physics, Mar 08: 8 core-hours", "physics, Mar 10: 2.5 core-hours"]
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert {"physics", "bio", "Mar 08", "Mar 10", "core-hours"} <= set(texts)
    assert "10" in texts  # y axis up to a round figure above the tallest stack (9)


def test_stacked_bars_sit_on_each_other() -> None:
    svg = chart([Series("a", [4, 0, 0]), Series("b", [4, 0, 0])])
    a, b = (g.find(f"{SVG}rect") for g in svg.findall(f"{SVG}g[@class='series']"))
    assert a is not None and b is not None
    assert float(b.get("y", "0")) + float(b.get("height", "0")) == pytest.approx(
        float(a.get("y", "0")), abs=0.2
    )


def test_the_label_and_title_say_what_it_shows_in_words() -> None:
    svg = chart([Series("physics", [8, 0, 2.5]), Series("bio", [1, 1, 0])])
    label = svg.get("aria-label")
    assert label == (
        "Core-hours per group per day. Totals: physics 10.5 core-hours, bio 2 core-hours."
    )
    title = svg.find(f"{SVG}title")
    assert title is not None and title.text == label


def test_an_empty_range_says_so() -> None:
    svg = chart([])
    assert svg.get("aria-label") == "Core-hours per group per day: nothing in this range."
    assert svg.findall(f"{SVG}g[@class='series']") == []


def test_group_names_are_escaped() -> None:
    name = '<script>alert("x")</script> & co'
    text = str(
        stacked_bars(
            chart_id="c", title="t", labels=["d"], series=[Series(name, [1])], unit="core-hours"
        )
    )
    assert "<script>" not in text
    svg = ET.fromstring(text)  # still well-formed
    (group,) = svg.findall(f"{SVG}g[@class='series']")
    assert group.get("data-series") == name
    assert name in [t.text for t in svg.iter(f"{SVG}text")]


def test_long_ranges_label_only_some_buckets() -> None:
    labels = [f"d{i}" for i in range(30)]
    svg = chart([Series("a", [1.0] * 30)], labels)
    shown = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "x-label"]
    assert 1 < len(shown) <= 8 and shown[0] == "d0"


def test_a_series_of_the_wrong_length_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="has 1 values for 3"):
        chart([Series("a", [1])])


def test_round_ticks_and_short_numbers() -> None:
    assert nice_ticks(9) == [0, 5, 10]
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(0.7) == [0, 0.2, 0.4, 0.6, 0.8]
    assert [number(v) for v in (0, 1.5, 12.34, 1250.4, 0.004)] == [
        "0",
        "1.5",
        "12.3",
        "1250",
        "0.004",
    ]


def test_a_series_keeps_the_colour_it_is_given() -> None:
    svg = chart([Series("b", [1, 1, 1], colour_index=2), Series("a", [1, 1, 1], colour_index=0)])
    fills = [g.get("fill") for g in svg.findall(f"{SVG}g[@class='series']")]
    assert fills == ["#009E73", "#0072B2"]
