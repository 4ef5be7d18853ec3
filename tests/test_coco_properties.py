"""Property-based tests (hypothesis) of the COCO reader and `coco check` on mutated data sets.

Whatever is done to a data set, the reader either reads it or raises DataError (one line naming the file),
and `coco check` never crashes: it passes the data set or prints one `error:` line per problem and exits 2.
Damage a detector would trip on (tests/bad_inputs_kit.py COCO_DAMAGE, truncated files) is always reported.
Examples are few and derandomised, so the suite stays fast and deterministic.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bad_inputs_kit import COCO_DAMAGE, write_coco
from baggan.cli import cli
from baggan.data.coco import CocoDataset
from baggan.data.coco_tools import check
from baggan.errors import DataError

SETTINGS = settings(max_examples=25, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

JUNK = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**40), st.floats(allow_nan=True, allow_infinity=True),
                 st.text(max_size=4), st.lists(st.integers(-2, 40), max_size=5), st.just({}),
                 st.just({"size": [16, 16], "counts": "x"}))


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return write_coco(tmp_path_factory.mktemp("coco") / "good")


def _copy(good: Path, into: str) -> Path:
    return Path(shutil.copytree(good, Path(into) / "ds"))


def _read_all(root: Path) -> None:
    """Everything a training loop reads: images, label maps and instance masks of every record."""
    ds = CocoDataset(root)
    for i in range(len(ds)):
        ds[i]


def _cli_check(root: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["coco", "check", str(root)])
    assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)  # never a traceback
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


def test_the_good_data_set_passes(good):
    assert all(not r["problems"] and r["ap"] == {"bbox": 1.0, "segm": 1.0} for r in check(good).values())
    _read_all(good)


@SETTINGS
@given(part=st.sampled_from(["images", "annotations", "categories"]), index=st.integers(0, 5),
       field=st.sampled_from(["id", "file_name", "label_file", "width", "height", "image_id", "category_id",
                              "segmentation", "bbox", "area", "name", "latent_row", "confidence", "extra"]),
       value=JUNK, delete=st.booleans())
def test_any_field_mutation_is_read_or_refused_in_one_line(good, part, index, field, value, delete):
    with tempfile.TemporaryDirectory() as tmp:
        root = _copy(good, tmp)
        doc = json.loads((root / "annotations.json").read_text())
        record = doc[part][index % len(doc[part])]
        if delete:
            record.pop(field, None)
        else:
            record[field] = value
        (root / "annotations.json").write_text(json.dumps(doc))
        try:
            _read_all(root)
        except DataError as e:
            assert "\n" not in str(e) and str(root) in str(e)
        code, lines = _cli_check(root)
        if code == 2:
            assert lines and all(line.startswith("error: ") and str(root) in line for line in lines)
        else:
            assert code == 0 and len(lines) == 1 and "AP bbox 1.000" in lines[0]
        if isinstance(value, float) and not math.isfinite(value) and not delete:
            assert code == 2  # NaN/inf anywhere is not JSON: strict readers refuse the file


@SETTINGS
@given(damages=st.lists(st.sampled_from(sorted(COCO_DAMAGE)), min_size=1, max_size=3, unique=True))
def test_damage_is_always_reported(good, damages):
    with tempfile.TemporaryDirectory() as tmp:
        root = _copy(good, tmp)
        COCO_DAMAGE[damages[0]](root)
        for name in damages[1:]:
            try:
                COCO_DAMAGE[name](root)
            except (KeyError, TypeError, IndexError, AttributeError, ValueError, FileNotFoundError):
                pass  # this damage needs a part that an earlier one broke
        code, lines = _cli_check(root)
        assert code == 2 and lines and all(line.startswith("error: ") for line in lines), (damages, lines)
        try:
            _read_all(root)
        except DataError:
            pass


@SETTINGS
@given(which=st.sampled_from(["images", "labels"]), index=st.integers(0, 2), keep=st.floats(0.0, 0.85))
def test_a_truncated_file_is_reported_and_refused(good, which, index, keep):
    with tempfile.TemporaryDirectory() as tmp:
        root = _copy(good, tmp)
        path = sorted((root / which).iterdir())[index]
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
        code, lines = _cli_check(root)
        assert code == 2 and len(lines) == 1 and path.name in lines[0], lines
        with pytest.raises(DataError, match=path.name):
            _read_all(root)
