"""Threat windows (baggan.data.xray.window): exact crops, the requested share, negatives, the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from baggan.cli import cli
from baggan.data.labelsets import PAPER_THREATS, PIDRAY
from baggan.data.xray.bag import Scene
from baggan.data.xray.geometry import Part, Poly, bounds, move_all, rect
from baggan.data.xray.window import WindowConfig, inside_share, window_kind, window_rng, windowed
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
    with pytest.raises(ValueError, match="window.cut"):
        WindowConfig(cut=1.5)
    with pytest.raises(ValueError, match="negatives \\+ clutter \\+ cut"):
        WindowConfig(negatives=0.5, clutter=0.3, cut=0.3)


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
    assert doc["info"]["simulator"]["window"] == {"share": [0.5, 0.8], "negatives": 0.2, "clutter": 0.0, "cut": 0.0,
                                                  "draw": "mixed"}
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


def _square_scene(window_centre: tuple[float, float], side: float) -> Scene:
    """One 4 x 4 cm steel square (a Hammer instance) at the origin, seen through a window."""
    scene = Scene("suitcase", fov=20.0)
    scene.add([Part("steel", (Poly(rect(4.0, 4.0)),), 0.5)], instance=0)
    scene.threats.append("Hammer")
    return windowed(scene, window_centre, side)


@pytest.mark.parametrize("centre, share", [((0.0, 0.0), 1.0), ((3.0, 0.0), 0.5), ((4.0, 4.0), 0.0625),
                                           ((9.0, 0.0), 0.0)])
def test_inside_share_exact(centre, share):
    """A square cut by a window of side 6 cm: half of it inside when the window's edge runs through its middle
    (centre (3, 0): window x in [0, 6]); a 1 x 1 cm corner (1/16) when shifted by (4, 4); none when apart."""
    assert inside_share(_square_scene(centre, 6.0), 0) == pytest.approx(share, abs=0.03)


def test_a_cut_off_threat_is_not_visible_to_the_judge():
    """The rendered square, half inside the window: present in the label, but not 'present and visible' under
    min_inside 0.6; wholly inside it is."""
    from baggan.evaluate.judge import visible_labels

    sim = XRaySimulator(SimConfig(threat_classes=("Hammer",)))
    half = sim.render_scene(_square_scene((3.0, 0.0), 6.0), 32, np.random.default_rng(0))
    whole = sim.render_scene(_square_scene((0.0, 0.0), 6.0), 32, np.random.default_rng(0))
    assert half.label.max() > 0 and half.inside == [pytest.approx(0.5, abs=0.03)] and whole.inside == [1.0]
    assert visible_labels(half, ("Hammer",), 0.02, 0.3, 0.6).tolist() == [0.0]
    assert visible_labels(half, ("Hammer",), 0.02, 0.3, 0.4).tolist() == [1.0]
    assert visible_labels(whole, ("Hammer",), 0.02, 0.3, 0.6).tolist() == [1.0]


def test_clutter_windows_are_centred_on_clutter_and_hold_no_threat():
    cfg = SimConfig(**{**LIGHT, "clutter_min": 2}, window=WindowConfig(negatives=0.0, clutter=1.0))
    sim = XRaySimulator(cfg)
    for seed in range(6):
        scene = sim.scene(seed)
        assert not scene.threats and scene.items
        centres = [sum(bounds(move_all([p for p, _ in scene.parts[a:b]], scene.view))) / 2 for a, b in scene.items]
        assert min(np.abs(c).max() for c in centres) < 1e-6  # one item's box centre is the window's centre
        scan = sim.render(seed, 32)
        assert not scan.instances and scan.label.max() == 0


def test_cut_windows_cut_threats_off_and_kinds_keep_old_streams():
    sim = XRaySimulator(SimConfig(**LIGHT, window=WindowConfig(negatives=0.0, cut=1.0)))
    inside = [sim.render(seed, 32).inside for seed in range(24)]
    shares = [s[0] if s else 0.0 for s in inside]
    assert min(shares) < 0.5 and max(shares) > 0.9  # from a sliver (or nothing) to the whole threat
    # without clutter and cut windows, the kind is the old negative draw: one uniform against `negatives`
    for seed in range(20):
        assert (window_kind(window_rng(seed), WindowConfig(negatives=0.3)) == "negative") == \
            (window_rng(seed).random() < 0.3)
    assert window_kind(window_rng(0), WindowConfig(negatives=0.0)) == "positive"
    kinds = [window_kind(window_rng(s), WindowConfig(negatives=0.2, clutter=0.3, cut=0.3)) for s in range(400)]
    assert {k: round(kinds.count(k) / 400, 1) for k in set(kinds)} == {"negative": 0.2, "clutter": 0.3, "cut": 0.3,
                                                                        "positive": 0.2}
