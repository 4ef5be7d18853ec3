"""Report helpers: JSON conversion, number formatting, Markdown tables, figures, the report folder."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from baggan.evaluate import report as rp


@dataclasses.dataclass
class _Row:
    name: str
    value: float


def test_to_jsonable():
    data = {"a": np.float32(0.5), "b": np.arange(3), "c": (1, float("nan")), "d": Path("x/y"),
            "e": _Row("r", math.inf), 3: np.bool_(True)}
    out = rp.to_jsonable(data)
    assert out == {"a": 0.5, "b": [0, 1, 2], "c": [1, None], "d": "x/y", "e": {"name": "r", "value": None},
                   "3": True}
    json.dumps(out, allow_nan=False)  # strict JSON


def test_number_formatting():
    assert rp.fmt(0.53612, 2, 100) == "53.61"
    assert rp.fmt(float("nan")) == "–" and rp.fmt(None) == "–"
    assert rp.fmt_mean_std(0.5361, 0.012) == "53.61 ± 1.20"
    assert rp.fmt_mean_std(0.5, None) == "50.00 ± 0.00"
    assert rp.fmt_mean_std(float("nan"), 0.1) == "–"


def test_markdown_table():
    table = rp.markdown_table(["a", "b"], [[1, "x|y"]])
    assert table == "| a | b |\n| --- | --- |\n| 1 | x\\|y |\n"
    with pytest.raises(ValueError, match="row 0 has 1 cells"):
        rp.markdown_table(["a", "b"], [[1]])


def test_overlay_and_colours():
    colours = rp.label_colours(4)
    assert colours.shape == (4, 3) and (colours[0] == 255).all() and len({tuple(c) for c in colours}) == 4
    image = np.full((2, 2, 3), 100, np.uint8)
    label = np.array([[0, 1], [2, 3]])
    out = rp.overlay_labels(image, label, 4, alpha=1.0)
    assert (out[0, 0] == 100).all()  # background untouched
    assert (out[0, 1] == colours[1]).all() and (out[1, 1] == colours[3]).all()


def test_write_report(tmp_path):
    rng = np.random.default_rng(0)
    figures = {"bars.png": rp.grouped_bars({"mIoU": {"A": ([0.1, 0.2], [0.01, 0.02]), "B": ([0.3, np.nan], [0, 0])}},
                                           ["1:0", "1:1"], ylabel="%"),
               "grid.png": rp.image_grid([[rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)]], ["row"], ["col"],
                                         legend={"thing": (255, 0, 0)})}
    md = rp.write_report(tmp_path / "out", "demo", {"x": np.float64(1.5)}, "# Demo\n![bars](bars.png)", figures)
    assert md == tmp_path / "out" / "demo.md" and md.read_text().endswith("\n")
    assert json.loads((tmp_path / "out" / "demo.json").read_text()) == {"x": 1.5}
    for name in figures:
        assert (tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bars.png", "demo.json", "demo.md", "grid.png"]
