"""Threat windows (baggan.data.xray.window): exact crops, the requested share, negatives, the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from baggan.cli import cli
from baggan.data.labelsets import PAPER_THREATS, PIDRAY
from baggan.data.xray.window import WindowConfig, window_kind, window_rng, windowed
from baggan.data.xraysim import SimConfig, XRaySimulator

LIGHT = dict(threat_classes=PAPER_THREATS, clutter_min=0, clutter_max=4, small_parts_max=0, max_threats=1)


def test_window_is_an_exact_crop_of_a_larger_scan():
    """A window aligned to the pixel grid of a 128² scan equals its 64² crop: labels exactly, images but for
    the photon noise (made negligible) and the detector blur at the window's border."""
    sim = XRaySimulator(SimConfig(threat_rate=1.0, scatter=0.0, photons_per_mm2=1e9))
    scene = sim.scene(5)
    big = sim.render_scene(scene, 128, np.random.default_rng(0))
    fov = scene.fov
    centre = (8 * fov / 128, -4 * fov / 128)  # whole pixels: the crop starts at (32 + 8, 32 - 4)
    win = sim.render_scene(windowed(scene, centre, fov / 2), 64, np.random.default_rng(1))
    x0, y0 = 40, 28
    assert big.label.max() > 0 and (big.label[y0:y0 + 64, x0:x0 + 64] > 0).any()
    np.testing.assert_array_equal(win.label, big.label[y0:y0 + 64, x0:x0 + 64])
    np.testing.assert_array_equal(win.material, big.material[y0:y0 + 64, x0:x0 + 64])
    np.testing.assert_allclose(win.transmission, big.transmission[:, y0:y0 + 64, x0:x0 + 64], atol=1e-4)
    diff = np.abs(win.image.astype(int) - big.image[y0:y0 + 64, x0:x0 + 64].astype(int))
    assert diff.max() <= 8


@pytest.mark.parametrize("share", [(0.3, 0.4), (0.6, 0.8)])
def test_threat_covers_the_requested_share(share):
    """The central threat's mask spans the requested share of the window side, within 3 pixels (every pixel
    the anti-aliased outline touches belongs to the mask; the box of the drawing ops pads strokes)."""
    sim = XRaySimulator(SimConfig(**LIGHT, window=WindowConfig(share=share, negatives=0.0)))
    spans = []
    for seed in range(12):
        scan = sim.render(seed, 64)
        ys, xs = np.nonzero(scan.instances[0].mask)
        spans.append(max(np.ptp(ys), np.ptp(xs)) + 1)
        assert scan.label.shape == (64, 64) and scan.image.shape == (64, 64, 3)
    spans = np.array(spans) / 64
    assert spans.min() >= share[0] - 3 / 64 and spans.max() <= share[1] + 3 / 64, spans


def test_negatives_carry_no_threat_and_positives_do():
    cfg = SimConfig(**LIGHT, window=WindowConfig(negatives=0.5))
    sim = XRaySimulator(cfg)
    kinds = []
    for seed in range(16):
        scan = sim.render(seed, 32)
        negative = window_kind(window_rng(seed), cfg.window) == "negative"
        kinds.append(negative)
        if negative:
            assert not scan.instances and scan.label.max() == 0
        else:
            assert scan.instances and scan.label.max() > 0
            assert all(PIDRAY.names[i.category_id - 1] in PAPER_THREATS for i in scan.instances)
    assert 0 < sum(kinds) < len(kinds)


def test_windows_are_deterministic_and_sized():
    sim = XRaySimulator(SimConfig(**LIGHT, window=WindowConfig()))
    a, b = sim.render(3, 16), sim.render(3, 16)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.image.shape == (16, 16, 3)


def test_window_config_is_checked():
    with pytest.raises(ValueError, match="window.share"):
        WindowConfig(share=(0.0, 0.5))
    with pytest.raises(ValueError, match="window.negatives"):
        WindowConfig(negatives=1.0)


def test_simulate_windows_cli_and_workers(tmp_path):
    """`baggan simulate --windows`: same COCO format, the same files with 1 or 2 workers."""
    runner = CliRunner()
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        r = runner.invoke(cli, ["simulate", "--n", "6", "--size", "32", "--windows", "--classes", "hammer,Wrench",
                                "--negatives", "0.2", "--workers", str(workers), "--outdir", str(out)])
        assert r.exit_code == 0, r.output
        outs.append(out)
    doc = json.loads((outs[0] / "annotations.json").read_text())
    assert doc["info"]["simulator"]["window"] == {"share": [0.5, 0.8], "negatives": 0.2}
    assert doc["info"]["simulator"]["threat_classes"] == ["Hammer", "Wrench"]
    assert {PIDRAY.names[a["category_id"] - 1] for a in doc["annotations"]} <= {"Hammer", "Wrench"}
    for name in sorted(p.name for p in (outs[0] / "images").iterdir()):
        assert (outs[0] / "images" / name).read_bytes() == (outs[1] / "images" / name).read_bytes()


@pytest.mark.parametrize("args, words", [
    (["--windows", "--classes", "Hammer,Chainsaw"], "unknown label 'Chainsaw'"),
    (["--windows", "--threat-share", "0", "0.5"], "window.share"),
    (["--windows", "--threat-share", "0.5", "1.5"], "window.share"),
    (["--windows", "--negatives", "1.0"], "window.negatives"),
    (["--threat-share", "0.4", "0.6"], "add --windows"),
    (["--windows", "--size", "15"], "15 is not in the range"),
])
def test_simulate_windows_bad_input(tmp_path, args, words):
    out = tmp_path / "out"
    argv = ["simulate", "--n", "2", "--size", "32", "--outdir", str(out)] + args
    r = CliRunner().invoke(cli, argv)
    assert r.exit_code == 2 and words in r.output, r.output
    assert [line for line in r.output.splitlines() if line.startswith(("error:", "Error:"))][0]
    assert not out.exists() and not list(tmp_path.iterdir())


def test_window_config_from_yaml(tmp_path):
    from baggan.config import load_config

    path = tmp_path / "sim.yaml"
    path.write_text("window:\n  share: [0.4, 0.6]\n  negatives: 0.1\nthreat_classes: [Pliers]\n")
    cfg = load_config(path, SimConfig)
    assert cfg.window == WindowConfig(share=(0.4, 0.6), negatives=0.1)
    assert dataclasses.replace(cfg, window=None).window is None
