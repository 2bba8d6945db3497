"""The report page's SVG charts: values printed, a pattern per series, text escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from adapters.dashboard.charts import BAR_WIDTH, Series, stacked_bars, value_text

SVG = "{http://www.w3.org/2000/svg}"


def chart() -> str:
    return stacked_bars(
        "c1",
        "Overdrachten per moment",
        ["Tiel", "Nijmegen <&>"],
        [Series("moment A", "A", [2, 0]), Series("moment B", "B", [2, 1])],
    )


def test_the_chart_is_well_formed_svg_with_a_title() -> None:
    root = ET.fromstring(chart())  # noqa: S314 - our own output
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title") is not None
    assert root.find(f"{SVG}title").text == "Overdrachten per moment"  # type: ignore[union-attr]


def test_every_bar_prints_its_values_so_colour_is_not_needed() -> None:
    root = ET.fromstring(chart())  # noqa: S314
    values = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "values"]
    assert values == ["A 2 · B 2 = 4", "A 0 · B 1 = 1"]
    assert value_text([Series("x", "x", [7])], 0) == "x 7"  # one series: no sum


def test_each_series_has_its_own_pattern_and_the_legend_shows_it() -> None:
    svg = chart()
    kinds = re.findall(r'<pattern id="c1-p(\d)" data-kind="(\w+)"', svg)
    assert kinds == [("0", "solid"), ("1", "hatch")]
    assert svg.count('fill="url(#c1-p1)"') == 1 + 2  # legend swatch, two bars


def test_bars_scale_to_the_largest_total_and_zeros_draw_nothing() -> None:
    root = ET.fromstring(chart())  # noqa: S314
    segments = [r for r in root.iter(f"{SVG}rect") if r.get("data-value")]
    widths = {
        (r.get("data-series"), r.get("data-value")): float(r.get("width", "0")) for r in segments
    }
    assert len(segments) == 3  # A 0 for Nijmegen is not drawn
    assert widths[("A", "2")] == pytest.approx(BAR_WIDTH / 2)
    assert widths[("B", "1")] == pytest.approx(BAR_WIDTH / 4)


def test_labels_are_escaped() -> None:
    svg = chart()
    assert "Nijmegen &lt;&amp;&gt;" in svg
    assert "<&>" not in svg


def test_an_empty_chart_says_so_and_bad_input_is_refused() -> None:
    assert "geen gegevens" in stacked_bars("e", "Leeg", [], [Series("a", "a", [])])
    with pytest.raises(ValueError, match="values"):
        stacked_bars("e", "x", ["a", "b"], [Series("a", "a", [1])])
    with pytest.raises(ValueError, match="negative"):
        stacked_bars("e", "x", ["a"], [Series("a", "a", [-1])])
