"""The project skeleton: strict config loading, atomic writes, one-line user errors, the COCO core."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import click
import numpy as np
import pytest
from click.testing import CliRunner

from baggan.cli import _Group
from baggan.config import check, from_dict, load_config, save_config
from baggan.data.coco import CocoDataset, CocoWriter, Instance, decode_rle, encode_rle
from baggan.data.labelsets import PIDRAY, get_label_set
from baggan.errors import ConfigError, DataError, UserError
from baggan.io import atomic_path, read_json, write_json_atomic


@dataclass(frozen=True)
class Inner:
    lr: float = 0.01
    betas: tuple[float, float] = (0.0, 0.99)

    def __post_init__(self):
        check(self.lr > 0, "lr", "must be positive")


@dataclass(frozen=True)
class Outer:
    name: str
    steps: int = 10
    mode: Literal["a", "b"] = "a"
    tags: list[str] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)
    limit: Optional[int] = None


def test_config_builds_nested_dataclasses():
    cfg = from_dict(Outer, {"name": "x", "steps": 3, "inner": {"lr": 1, "betas": [0.5, 0.9]}, "limit": None})
    assert cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float)
    assert cfg.inner.betas == (0.5, 0.9)
    assert cfg.steps == 3 and cfg.limit is None


@pytest.mark.parametrize(
    "data, message",
    [
        ({"name": "x", "stepz": 3}, "stepz: unknown key"),
        ({"steps": 3}, "name: missing required key"),
        ({"name": "x", "steps": "3"}, "steps: expected an integer"),
        ({"name": "x", "steps": True}, "steps: expected an integer"),
        ({"name": "x", "mode": "c"}, "mode: 'c' is not one of"),
        ({"name": "x", "inner": {"lr": -1}}, "inner.lr: must be positive"),
        ({"name": "x", "inner": {"momentum": 1}}, "inner.momentum: unknown key"),
        ({"name": "x", "inner": {"betas": [1]}}, "inner.betas: expected 2 items"),
        ({"name": "x", "tags": "a"}, "tags: expected a list"),
    ],
)
def test_config_errors_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        from_dict(Outer, data)


def test_load_config_names_file_and_roundtrips(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: run\ninner:\n  lr: 0.5\n")
    cfg = load_config(path, Outer)
    save_config(tmp_path / "resolved.yaml", cfg)
    assert load_config(tmp_path / "resolved.yaml", Outer) == cfg
    path.write_text("name: run\nbogus: 1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: bogus: unknown key"):
        load_config(path, Outer)
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_config(path, Outer)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml", Outer)


def test_base_config_merges_under_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "base.yaml").write_text("name: run\nsteps: 7\ninner:\n  lr: 0.5\n  betas: [0.1, 0.2]\n")
    (tmp_path / "sub" / "top.yaml").write_text("base: ../base.yaml\ninner:\n  lr: 2\ntags: [x]\n")
    cfg = load_config(tmp_path / "sub" / "top.yaml", Outer)
    assert cfg == Outer(name="run", steps=7, tags=["x"], inner=Inner(lr=2.0, betas=(0.1, 0.2)))
    (tmp_path / "base.yaml").write_text("base: sub/top.yaml\nname: run\n")
    with pytest.raises(ConfigError, match="base configs form a cycle"):
        load_config(tmp_path / "sub" / "top.yaml", Outer)
    (tmp_path / "sub" / "top.yaml").write_text("base: nowhere.yaml\nname: run\n")
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: config file not found"):
        load_config(tmp_path / "sub" / "top.yaml", Outer)


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert read_json(target) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_read_json_reports_position(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 1,,}')
    with pytest.raises(DataError, match=r"bad\.json: malformed JSON at line 1"):
        read_json(bad)


def test_user_error_is_one_line_exit_2():
    @click.group(cls=_Group)
    @click.pass_context
    def group(ctx):
        ctx.ensure_object(dict)

    @group.command()
    def boom():
        raise UserError("data/x.png: not a readable image")

    result = CliRunner().invoke(group, ["boom"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["error: data/x.png: not a readable image"]


def test_os_error_is_one_line_exit_1():
    @click.group(cls=_Group)
    @click.pass_context
    def group(ctx):
        ctx.ensure_object(dict)

    @group.command()
    def full():
        import errno

        raise OSError(errno.ENOSPC, "No space left on device", "out/shard-0001/images/x.png")

    result = CliRunner().invoke(group, ["full"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["error: No space left on device: out/shard-0001/images/x.png"]


def test_coco_core_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    writer = CocoWriter(tmp_path, PIDRAY.coco_categories(), {"source": "test"})
    label = np.zeros((24, 32), np.int64)
    label[2:9, 3:12] = 3
    label[12:20, 20:30] = 6
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    writer.add(image, label, [Instance(3, label == 3), Instance(6, label == 6)], meta={"seed": 7})
    writer.close()
    sample = CocoDataset(tmp_path)[0]
    assert np.array_equal(sample.image, image)
    assert np.array_equal(sample.label, label)
    assert [i.category_id for i in sample.instances] == [3, 6]
    assert sample.instances[0].extra["bbox"] == [3.0, 2.0, 9.0, 7.0]
    assert sample.meta["seed"] == 7
    mask = rng.random((17, 13)) > 0.5
    assert np.array_equal(decode_rle(encode_rle(mask)), mask)


def test_coco_writer_rejects_bad_records(tmp_path):
    writer = CocoWriter(tmp_path, PIDRAY.coco_categories())
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(DataError, match="does not match image"):
        writer.add(image, np.zeros((8, 9), np.int64))
    with pytest.raises(DataError, match="unknown category id 99"):
        writer.add(image, np.zeros((8, 8), np.int64), [Instance(99, np.ones((8, 8), bool))])


def test_label_sets():
    assert PIDRAY.id_of("hammer") == 3 and PIDRAY.id_of("HandCuffs") == 10
    assert PIDRAY.num_classes == 13
    with pytest.raises(UserError, match="unknown label"):
        PIDRAY.id_of("laptop")
    with pytest.raises(UserError, match="unknown label set"):
        get_label_set("dogs")
