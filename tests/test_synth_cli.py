"""`baggan synthesize` end to end with tiny randomly initialised real networks (CliRunner and torchrun)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from baggan.cli import cli
from baggan.data.coco import CocoDataset, dataset_dirs
from baggan.data.coco_tools import self_check
from baggan.stylegan2 import NetworkConfig, build_generator, save_network
from baggan.synth.build import write_random_pieces

sys.path.insert(0, str(Path(__file__).parent))
from _synth_toy import snapshot  # noqa: E402

TINY = NetworkConfig(cfg="custom", resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256,
                     channel_max=32, num_fp16_res=0, d_architecture="resnet", mbstd_group_size=2)


@pytest.fixture(scope="module")
def pieces(tmp_path_factory):
    return write_random_pieces(tmp_path_factory.mktemp("pieces"), TINY, dim=16)


def _args(pieces, outdir, *extra):
    net, hfc, seg = pieces
    return ["synthesize", "--network", str(net), "--hfc", str(hfc), "--segmenter", str(seg), "--outdir", str(outdir),
            *extra]


def test_synthesize_writes_a_valid_sharded_data_set_and_resumes(pieces, tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, _args(pieces, tmp_path / "out", "--n", "7", "--shard-size", "3", "--batch", "2",
                                 "--min-area", "2", "--fill-holes", "--writer", "process"))
    assert r.exit_code == 0, r.output
    assert torch.is_grad_enabled(), "the command must not switch autograd off for the caller"
    assert "7 images" in r.output and "acceptance rate: 1.000" in r.output and str(tmp_path / "out") in r.output
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["complete"] and index["settings"]["class_to_category"] == [0, 3, 11]
    for d in dataset_dirs(tmp_path / "out"):
        ds = CocoDataset(d)
        if ds.doc["annotations"]:
            assert self_check(ds.path) == {"bbox": 1.0, "segm": 1.0}
        assert ds.read_image(0).shape == (16, 16, 3) and set(np.unique(ds.read_label(0))) <= {0, 3, 11}
    r = runner.invoke(cli, _args(pieces, tmp_path / "out", "--n", "7", "--shard-size", "3", "--batch", "3",
                                 "--min-area", "2", "--fill-holes"))
    assert r.exit_code == 0 and "skipped 3 finished" in r.output, r.output  # batch and writer do not matter
    r = runner.invoke(cli, _args(pieces, tmp_path / "out", "--n", "8", "--shard-size", "3"))
    assert r.exit_code == 2 and "other settings" in r.output
    # same settings, but another generator file at a path of its own: the finished shards are not reused
    other = tmp_path / "other.pt"
    save_network(other, {"G_ema": build_generator(TINY).eval()}, TINY)
    net, hfc, seg = pieces
    r = runner.invoke(cli, _args((other, hfc, seg), tmp_path / "out", "--n", "7", "--shard-size", "3",
                                 "--batch", "2", "--min-area", "2", "--fill-holes"))
    assert r.exit_code == 2 and "other settings (inputs:" in r.output, r.output


def test_synthesize_is_independent_of_batch_size(pieces, tmp_path):
    runner = CliRunner()
    for b in ("1", "5"):
        r = runner.invoke(cli, _args(pieces, tmp_path / b, "--n", "5", "--shard-size", "5", "--batch", b))
        assert r.exit_code == 0, r.output
    one, five = snapshot(tmp_path / "1"), snapshot(tmp_path / "5")
    assert one.keys() == five.keys()
    assert all(one[k] == five[k] for k in one if k.endswith((".png", ".npy")))
    docs = [json.loads(s["shard-00000/annotations.json"]) for s in (one, five)]
    assert docs[0]["annotations"] == docs[1]["annotations"]
    assert np.allclose([im["confidence"] for im in docs[0]["images"]],
                       [im["confidence"] for im in docs[1]["images"]], atol=2e-4)


def test_synthesize_threat_steered_and_user_errors(pieces, tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, _args(pieces, tmp_path / "t", "--n", "3", "--threat", "Hammer", "--min-area", "2",
                                 "--steer", "1.0", "--calibration", "16", "--drop-uncertain", "0.25", "--polygons"))
    assert r.exit_code == 0, r.output
    assert "steering: alpha 1.0" in r.output and "dropped as least confident: 1" in r.output
    ds = CocoDataset(tmp_path / "t" / "shard-00000")
    assert all(any(x.category_id == 3 for x in ds.instances(i)) for i in range(len(ds)))
    assert all(isinstance(a["segmentation"], list) for a in ds.doc["annotations"])
    for bad, msg in ((["--threat", "Gun"], "does not predict"), (["--threat", "Axe"], "unknown label"),
                     (["--drop-uncertain", "1.5"], "--drop-uncertain"), (["--device", "tpu"], "--device")):
        r = runner.invoke(cli, _args(pieces, tmp_path / "e", "--n", "2", *bad))
        assert r.exit_code == 2 and msg in r.output and len(r.output.strip().splitlines()) == 1, r.output


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None, reason="no torchrun")
def test_torchrun_two_ranks_equal_one_process(pieces, tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    net, hfc, seg = pieces
    args = ["-m", "baggan", "synthesize", "--network", str(net), "--hfc", str(hfc), "--segmenter", str(seg),
            "-n", "6", "--shard-size", "2", "--batch", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([torchrun, "--nproc_per_node", "2", *args, "--outdir", str(tmp_path / "tr")], env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = CliRunner().invoke(cli, args[2:] + ["--outdir", str(tmp_path / "one")])
    assert r.exit_code == 0, r.output
    index = json.loads((tmp_path / "tr" / "index.json").read_text())
    assert index["complete"] and sorted({s["rank"] for s in index["shards"]}) == [0, 1]
    a, b = snapshot(tmp_path / "tr"), snapshot(tmp_path / "one")
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a if k.endswith((".png", ".npy")))
