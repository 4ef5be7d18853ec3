"""Synthesis engine on a toy annotator: shards + index, determinism, resume, QC drop, regeneration, threats."""

import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from baggan.data.coco import CocoDataset, dataset_dirs
from baggan.data.coco_tools import self_check
from baggan.errors import UserError
from baggan.synth import SynthSettings, confidence, load_latent

sys.path.insert(0, str(Path(__file__).parent))
from _synth_toy import CLASS_TO_CATEGORY, HAMMER, ToyAnnotator, ToyGenerator, run_toy, sigint_default, snapshot  # noqa: E402


def test_shards_and_index(tmp_path):
    summary = run_toy(tmp_path, n=23, shard_size=10, batch=4, min_area=3)
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["complete"] and index["num_shards"] == 3
    assert [s["name"] for s in index["shards"]] == ["shard-00000", "shard-00001", "shard-00002"]
    assert [s["images"] for s in index["shards"]] == [10, 10, 3]
    assert index["totals"]["images"] == 23 == summary.images
    assert index["totals"]["acceptance_rate"] == 1.0
    n_ann = 0
    for d in dataset_dirs(tmp_path):
        ds = CocoDataset(d)
        n_ann += len(ds.doc["annotations"])
        assert self_check(ds.path) == {"bbox": 1.0, "segm": 1.0}
        for i in range(len(ds)):
            s = ds[i]
            assert s.image.shape == (32, 32, 3) and set(np.unique(s.label)) <= {0, 3, 11}
            assert {"seed", "shard", "candidate", "z_seed", "psi", "confidence", "latent_file"} <= set(s.meta)
    assert n_ann == index["totals"]["annotations"] == sum(index["totals"]["instances_per_category"].values())
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "shard-00000").stat().st_mode) == 0o777 & ~umask  # not mkdtemp's 0700
    text = "\n".join(summary.lines())
    assert "23 images" in text and "acceptance rate: 1.000" in text and str(tmp_path) in text


def test_scans_regenerate_from_their_recorded_latents(tmp_path):
    run_toy(tmp_path, n=4, shard_size=4, batch=3)
    ds = CocoDataset(tmp_path / "shard-00000")
    gen = ToyGenerator(32)
    for i in range(len(ds)):
        rec = ds.images[i]
        ws = load_latent(ds.root, rec, gen.num_ws)
        assert torch.equal(ws[None], gen.sample_ws(1, rec["psi"], rec["z_seed"]))
        img, _, _ = ToyAnnotator(gen)(ws[None])
        assert np.array_equal((img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy(),
                              ds.read_image(i))


def test_content_does_not_depend_on_batch_size(tmp_path):
    run_toy(tmp_path / "a", n=12, shard_size=5, batch=1, threat=HAMMER, min_area=10, drop_uncertain=0.25)
    run_toy(tmp_path / "b", n=12, shard_size=5, batch=7, threat=HAMMER, min_area=10, drop_uncertain=0.25)
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    run_toy(tmp_path / "c", n=12, shard_size=5, batch=7, seed=1, threat=HAMMER, min_area=10, drop_uncertain=0.25)
    assert snapshot(tmp_path / "a") != snapshot(tmp_path / "c")


def test_resume_after_a_kill_between_shards_matches_an_uninterrupted_run(tmp_path):
    settings = dict(n=25, shard_size=5, batch=2, min_area=3)  # thread writer: the callback runs on the writer
    run_toy(tmp_path / "full", **settings)

    def die_after_shard_1(k):
        if k == 1:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        run_toy(tmp_path / "cut", on_shard_done=die_after_shard_1, sleep=0.01, **settings)
    index = json.loads((tmp_path / "cut" / "index.json").read_text())
    assert [s["name"] for s in index["shards"]] == ["shard-00000", "shard-00001"] and not index["complete"]
    for d in dataset_dirs(tmp_path / "cut"):  # finished shards are valid data sets
        assert self_check(d / "annotations.json") == {"bbox": 1.0, "segm": 1.0}
    summary = run_toy(tmp_path / "cut", **settings)
    assert summary.shards_skipped == [0, 1] and summary.shards_written == [2, 3, 4]
    assert not list((tmp_path / "cut").glob(".shard-*"))
    assert snapshot(tmp_path / "cut") == snapshot(tmp_path / "full")


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_a_full_disk_leaves_finished_shards_valid_and_resume_completes(tmp_path, monkeypatch, writer):
    import errno

    import baggan.data.coco as coco

    settings = dict(n=12, shard_size=4, batch=3, min_area=3, writer=writer)
    real, calls = coco.encode_image, []

    def fill_up(path, image):  # every scan and label PNG goes through here on its way to the disk
        calls.append(path)
        if len(calls) > 2 * 6:  # 6 scans (image + label each) fit on the "disk"
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, image)

    monkeypatch.setattr(coco, "encode_image", fill_up)
    with pytest.raises(OSError, match="No space"):
        run_toy(tmp_path / "cut", **settings)
    assert [d.name for d in dataset_dirs(tmp_path / "cut")] == ["shard-00000"]
    assert len(CocoDataset(tmp_path / "cut" / "shard-00000")) == 4
    monkeypatch.setattr(coco, "encode_image", real)
    assert run_toy(tmp_path / "cut", **settings).shards_written == [1, 2]
    run_toy(tmp_path / "full", **settings)
    assert snapshot(tmp_path / "cut") == snapshot(tmp_path / "full")


def test_resume_refuses_other_settings(tmp_path):
    run_toy(tmp_path, n=4, shard_size=2, batch=2)
    with pytest.raises(UserError, match="psi"):
        run_toy(tmp_path, n=4, shard_size=2, batch=2, psi=0.5)
    assert run_toy(tmp_path, n=4, shard_size=2, batch=3).shards_skipped == [0, 1]  # batch may change


def test_quality_control_drops_the_least_confident(tmp_path):
    run_toy(tmp_path / "all", n=15, shard_size=15, batch=4)  # the same 15 candidates, none dropped
    summary = run_toy(tmp_path / "qc", n=10, shard_size=10, batch=4, drop_uncertain=0.3)
    assert summary.index["totals"]["images"] == 10 and summary.index["totals"]["dropped"] == 5  # ceil(10/0.7)=15
    kept = CocoDataset(tmp_path / "qc" / "shard-00000").images
    conf = {im["candidate"]: im["confidence"] for im in CocoDataset(tmp_path / "all" / "shard-00000").images}
    top10 = sorted(sorted(conf, key=lambda j: -conf[j])[:10])
    assert [im["candidate"] for im in kept] == top10
    assert [im["confidence"] for im in kept] == [conf[j] for j in top10]
    assert min(conf[j] for j in top10) >= max(conf[j] for j in conf if j not in top10)
    assert [im["latent_row"] for im in kept] == list(range(10)) and [im["id"] for im in kept] == list(range(1, 11))
    assert len(list((tmp_path / "qc" / "shard-00000" / "images").iterdir())) == 10


def test_confidence_is_mean_max_probability_over_foreground():
    probs = torch.tensor([[0.9, 0.2], [0.1, 0.8]]).T.reshape(1, 2, 1, 2).repeat(2, 1, 1, 1)
    labels = torch.tensor([[[0, 1]], [[0, 0]]])
    assert torch.allclose(confidence(probs, labels), torch.tensor([0.8, 0.85]))


def test_condition_classes_put_the_drawn_class_where_background_is_unlikely():
    from baggan.oneshot import condition_classes

    probs = torch.tensor([[0.9, 0.05, 0.05], [0.4, 0.5, 0.1], [0.45, 0.2, 0.35], [0.2, 0.1, 0.7]]).T
    probs = probs.reshape(1, 3, 1, 4).repeat(3, 1, 1, 1)
    allowed = torch.tensor([[True, True, False], [False, False, True], [False, False, False]])  # bg column ignored
    assert condition_classes(probs, allowed).tolist() == [[[0, 1, 1, 1]], [[0, 2, 2, 2]], [[0, 0, 0, 0]]]
    # a higher threshold keeps only the surest pixels; among_allowed leaves the other threat classes out
    assert condition_classes(probs, allowed, 0.7).tolist() == [[[0, 0, 0, 1]], [[0, 0, 0, 2]], [[0, 0, 0, 0]]]
    assert condition_classes(probs, allowed, 0.5, among_allowed=True).tolist() == [
        [[0, 1, 0, 0]], [[0, 0, 0, 2]], [[0, 0, 0, 0]]]


def test_class_from_condition_gives_threat_pixels_the_drawn_category(tmp_path):
    knife = CLASS_TO_CATEGORY[2]

    def drawn(seeds):
        return [knife if s % 2 else HAMMER for s in seeds]

    run_toy(tmp_path / "seg", n=8, shard_size=8, batch=3)
    run_toy(tmp_path / "cond", n=8, shard_size=8, batch=3, class_from="condition", conditions=drawn)
    seg, cond = (CocoDataset(tmp_path / d / "shard-00000") for d in ("seg", "cond"))
    both = 0
    for i, rec in enumerate(cond.images):
        a, b = seg.read_label(i), cond.read_label(i)
        assert set(np.unique(b).tolist()) - {0} <= set(drawn([rec["z_seed"]]))
        assert ((a > 0) <= (b > 0)).all()  # argmax not background implies p(background) < 1/2
        both += len(set(np.unique(a).tolist()) - {0}) > 1
    assert both  # some scan held both toy objects: there the segmenter's two classes became one
    assert json.loads((tmp_path / "cond" / "index.json").read_text())["settings"]["class_from"] == "condition"
    assert "class_from" not in SynthSettings(n=1).content()  # data sets written before the option still resume
    assert "threat_threshold" not in SynthSettings(n=1, class_from="condition").content()  # 0.5: as before it existed
    assert SynthSettings(n=1, class_from="condition", threat_threshold=0.8).content()["threat_threshold"] == 0.8
    with pytest.raises(ValueError, match="threat_threshold"):
        SynthSettings(n=1, threat_threshold=1.0)
    with pytest.raises(UserError, match="not conditional"):
        run_toy(tmp_path / "none", n=2, shard_size=2, class_from="condition")
    with pytest.raises(ValueError, match="class_from"):
        SynthSettings(n=1, class_from="judge")


def test_threat_rejection_and_steered_sampling(tmp_path):
    base = dict(n=30, shard_size=15, batch=8, threat=HAMMER, min_area=20, psi=0.7)
    rej = run_toy(tmp_path / "rej", **base)
    steer = run_toy(tmp_path / "steer", steer=1.0, calibration=200, **base)
    r_rate, s_rate = rej.index["totals"]["acceptance_rate"], steer.index["totals"]["acceptance_rate"]
    assert 0.05 < r_rate < 0.5 and s_rate > 2 * r_rate
    for out in ("rej", "steer"):  # every kept scan holds a Hammer instance of >= min_area pixels
        for d in dataset_dirs(tmp_path / out):
            ds = CocoDataset(d)
            for i in range(len(ds)):
                assert any(x.category_id == HAMMER and x.mask.sum() >= 20 for x in ds.instances(i))
    assert steer.steering["calibration"] == 200 and 0 < steer.steering["calibration_acceptance"] < 1
    assert (tmp_path / "steer" / "steer.json").is_file()
    # steering moves along one direction only: the other latent coordinates stay as spread out as before
    lat = {o: np.concatenate([np.load(d / "latents.npy") for d in dataset_dirs(tmp_path / o)]) for o in ("rej", "steer")}
    spread = {o: lat[o][:, [0, 1, 4, 5]].std(0).mean() for o in lat}
    assert spread["steer"] > 0.6 * spread["rej"]
    again = run_toy(tmp_path / "steer2", steer=1.0, calibration=200, **dict(base, batch=3))
    assert snapshot(tmp_path / "steer2") == snapshot(tmp_path / "steer") and again.steering == steer.steering


def test_settings_are_checked():
    with pytest.raises(ValueError, match="drop_uncertain"):
        SynthSettings(n=1, drop_uncertain=1.0)
    with pytest.raises(ValueError, match="steer"):
        SynthSettings(n=1, steer=1.0)
    with pytest.raises(ValueError, match="writer"):
        SynthSettings(n=1, writer="fibre")
    assert SynthSettings(n=2500, shard_size=1000).num_shards == 3


def test_process_and_thread_writers_write_the_same_data_set(tmp_path):
    settings = dict(n=12, shard_size=5, batch=3, threat=HAMMER, min_area=10, drop_uncertain=0.25)
    run_toy(tmp_path / "p", writer="process", **settings)
    run_toy(tmp_path / "t", writer="thread", **settings)
    assert snapshot(tmp_path / "p") == snapshot(tmp_path / "t") and len(dataset_dirs(tmp_path / "p")) == 3


def test_ctrl_c_stops_both_processes_and_resume_matches(tmp_path):
    import signal
    import subprocess
    import time

    settings = dict(n=25, shard_size=5, batch=2, min_area=3, writer="process")
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from _synth_toy import run_toy; "
            f"run_toy({str(tmp_path / 'cut')!r}, sleep=0.2, **{settings!r})")  # 15 calls: 3 s in all
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, preexec_fn=sigint_default,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (tmp_path / "cut" / "shard-00000").is_dir() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group, writer included
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and b"KeyboardInterrupt" in err
    assert not json.loads((tmp_path / "cut" / "index.json").read_text())["complete"]
    for d in dataset_dirs(tmp_path / "cut"):
        assert self_check(d / "annotations.json") == {"bbox": 1.0, "segm": 1.0}
    summary = run_toy(tmp_path / "cut", **settings)
    assert len(summary.shards_skipped) >= 1 and not list((tmp_path / "cut").glob(".shard-*"))
    run_toy(tmp_path / "full", **settings)
    assert snapshot(tmp_path / "cut") == snapshot(tmp_path / "full")


def test_a_dead_writer_process_stops_the_run_with_a_clear_error(tmp_path):
    import multiprocessing
    import signal

    def kill_writer(k):
        if k == 0:
            for p in multiprocessing.active_children():
                if p.name == "synth-writer":
                    os.kill(p.pid, signal.SIGKILL)

    with pytest.raises(RuntimeError, match="writer process died"):
        run_toy(tmp_path, n=20, shard_size=5, batch=2, sleep=0.02, on_shard_done=kill_writer, writer="process")
    assert [d.name for d in dataset_dirs(tmp_path)] == ["shard-00000"]
    assert run_toy(tmp_path, n=20, shard_size=5, batch=2).shards_written == [1, 2, 3]


def test_category_table_is_uint8_while_ids_fit():
    from baggan.synth.engine import category_table

    small, large = category_table([0, 3, 11]), category_table([0, 3, 300])
    assert small.dtype == torch.uint8 and small.tolist() == [0, 3, 11]
    assert large.dtype == torch.int64 and large.tolist() == [0, 3, 300]
