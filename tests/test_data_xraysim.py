"""The X-ray simulator: NIST table, physics sanity, exact masks, determinism, sizes, knobs."""

from pathlib import Path

import numpy as np
import pytest

from baggan.config import load_config
from baggan.data.labelsets import PAPER_THREATS, PIDRAY
from baggan.data.xray.geometry import Part, Pose, Poly, rect
from baggan.data.xray.materials import MATERIALS, NIST_MU_RHO, material_id
from baggan.data.xray.raster import Canvas
from baggan.data.xray.render import attenuation, measure, pseudo_colour
from baggan.data.xraysim import SimConfig, XRaySimulator, scan_seed
from baggan.errors import ConfigError

QUIET = SimConfig(photons_per_mm2=1e9, scatter=0.0)  # practically noise-free, for physics checks


def test_nist_values_and_mixture_rule():
    assert NIST_MU_RHO["water"] == (0.2683, 0.1837)  # NIST SRD 126, 40 and 80 keV
    assert NIST_MU_RHO["Fe"] == (3.629, 0.5952)
    steel = MATERIALS[material_id("steel") - 1]
    assert steel.mu_rho == pytest.approx((3.629, 0.5952))
    lo, hi = MATERIALS[material_id("paper") - 1].mu_rho  # cellulose C6H10O5 by the mixture rule
    assert lo == pytest.approx(0.4445 * 0.2076 + 0.0622 * 0.3458 + 0.4933 * 0.2585, rel=1e-3)
    assert hi == pytest.approx(0.4445 * 0.1610 + 0.0622 * 0.3091 + 0.4933 * 0.1678, rel=1e-3)
    ratio = {m.name: m.mu_rho[0] / m.mu_rho[1] for m in MATERIALS}
    organic = max(ratio[m] for m in ("textile", "water", "plastic", "rubber"))
    assert organic < 1.5 < ratio["aluminium"] < 5 < ratio["steel"]


def _plates(materials, thickness=0.4, size=100):
    """A noise-free scan of one 10 x 20 cm plate per material side by side (1 px = 1 cm); RGB, plate boxes."""
    canvas = Canvas(size, Pose(0, 0, 0, 1.0))
    boxes = []
    for k, mat in enumerate(materials):
        x = 5 + 15 * k
        canvas.draw(Part(mat, (Poly(rect(10, 20, x + 5, 20)),), thickness))
        boxes.append((slice(13, 28), slice(x + 2, x + 8)))
    a_lo, a_hi = attenuation(canvas.mass)
    rng = np.random.default_rng(0)
    (t_lo, floor), (t_hi, _) = measure(a_lo, 1e9, 0.0, 0.0, 1.0, rng), measure(a_hi, 1e9, 0.0, 0.0, 1.0, rng)
    return pseudo_colour(t_lo, t_hi, floor), boxes, (t_lo, t_hi)


@pytest.mark.parametrize("thickness", [0.05, 0.2, 0.5])
def test_metal_is_darker_and_bluer_than_organics_of_the_same_thickness(thickness):
    rgb, boxes, _ = _plates(["textile", "plastic", "water", "aluminium", "steel", "copper"], thickness)
    mean = [rgb[b].reshape(-1, 3).astype(float).mean(0) for b in boxes]
    brightness = [m.sum() for m in mean]
    blueness = [m[2] - m[0] for m in mean]
    for organic in range(3):
        for metal in (4, 5):
            assert brightness[metal] < brightness[organic]
            assert blueness[metal] > blueness[organic]
    assert all(m[0] >= m[2] for m in mean[:3])  # organics: orange family (red above blue)
    assert mean[3][1] >= max(mean[3][0], mean[3][2])  # aluminium: green family
    if thickness >= 0.2:
        assert mean[2][0] > mean[2][1] > mean[2][2]  # water: clearly orange


def test_transmission_is_in_unit_interval_and_empty_is_white():
    rgb, _, (t_lo, t_hi) = _plates(["steel", "lead"], thickness=3.0)
    for t in (t_lo, t_hi):
        assert t.min() > 0 and t.max() <= 1
    assert (rgb[0, 0] >= 250).all()  # nothing in the ray: white
    scan = XRaySimulator().render(3, 64)
    assert scan.transmission.shape == (2, 64, 64)
    assert scan.transmission.min() > 0 and scan.transmission.max() <= 1


def test_beer_lambert_exactly():
    canvas = Canvas(32, Pose(0, 0, 0, 1.0))
    canvas.draw(Part("water", (Poly(rect(40, 40, 16, 16)),), 2.0))
    a_lo, a_hi = attenuation(canvas.mass)
    assert a_lo[16, 16] == pytest.approx(0.2683 * 1.0 * 2.0, rel=1e-5)
    assert a_hi[16, 16] == pytest.approx(0.1837 * 1.0 * 2.0, rel=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_masks_equal_the_threats_projection(seed):
    sim = XRaySimulator(SimConfig(threat_rate=1.0, max_threats=3))
    size = 96
    scan = sim.render(seed, size)
    scene = sim.scene(seed)
    assert len(scan.instances) >= 1
    to_px = sim.to_pixels(scene, size)
    supports = {}
    for k, name in enumerate(scene.threats):
        canvas = Canvas(size, to_px)
        for part, inst in scene.parts:
            if inst == k:
                canvas.draw(part)
        supports[k] = canvas.mass.sum(0) > 0
    visible = [k for k in supports if supports[k].any()]
    assert len(visible) == len(scan.instances)
    expected_label = np.zeros((size, size), np.uint8)
    for k, inst in zip(visible, scan.instances):
        assert np.array_equal(inst.mask, supports[k])  # exact, occluded or not
        assert inst.category_id == PIDRAY.id_of(scene.threats[k])
        expected_label[supports[k]] = inst.category_id  # later-drawn threat wins
    assert np.array_equal(scan.label, expected_label)
    for v in scan.visibility:
        assert 0 < v <= 1


def test_visibility_is_high_in_an_empty_bag_and_lower_in_clutter():
    empty = XRaySimulator(SimConfig(threat_rate=1.0, max_threats=1, clutter_min=0, clutter_max=0, small_parts_max=0,
                                    threat_classes=("Wrench",)))
    full = XRaySimulator(SimConfig(threat_rate=1.0, max_threats=1, clutter_min=30, clutter_max=30,
                                   threat_classes=("Wrench",)))
    v_empty = [empty.render(s, 64).visibility[0] for s in range(4)]
    v_full = [full.render(s, 64).visibility[0] for s in range(4)]
    assert min(v_empty) > 0.8
    assert np.mean(v_full) < np.mean(v_empty)


def test_deterministic_per_seed_and_independent_of_size():
    sim = XRaySimulator()
    a, b, c = sim.render(11, 64), sim.render(11, 64), sim.render(12, 64)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.label, b.label)
    assert np.array_equal(a.material, b.material)
    assert not np.array_equal(a.image, c.image)
    big = sim.render(11, 128)
    assert big.meta["bag"] == a.meta["bag"] and big.meta["threats"] == a.meta["threats"]
    assert scan_seed(5, 3) == scan_seed(5, 3) != scan_seed(5, 4)


@pytest.mark.parametrize("name", PIDRAY.names)
def test_every_threat_is_visible_at_64(name):
    sim = XRaySimulator(SimConfig(threat_rate=1.0, max_threats=1, threat_classes=(name,)))
    scan = sim.render(7, 64)
    assert len(scan.instances) == 1
    mask = scan.instances[0].mask
    min_px = 3 if name in ("Bullet", "Lighter") else 12
    assert mask.sum() >= min_px
    inside = scan.image[mask].astype(float).sum(1).mean()
    assert inside < 600  # darker than an empty (white, 765) pixel: the threat shows


@pytest.mark.parametrize("size", [64, 200, 512])
def test_any_size(size):
    scan = XRaySimulator(SimConfig(threat_rate=1.0)).render(1, size)
    assert scan.image.shape == (size, size, 3) and scan.image.dtype == np.uint8
    assert scan.label.shape == scan.material.shape == (size, size)
    assert scan.material.max() <= len(MATERIALS)
    with pytest.raises(ValueError):
        XRaySimulator().render(1, 15)  # below MIN_SIZE (16)


def test_threat_rate_and_classes():
    never = XRaySimulator(SimConfig(threat_rate=0.0))
    assert all(not never.scene(s).threats for s in range(12))
    always = XRaySimulator(SimConfig(threat_rate=1.0, threat_classes=PAPER_THREATS))
    scenes = [always.scene(s) for s in range(12)]
    assert all(1 <= len(s.threats) <= 3 for s in scenes)
    assert {t for s in scenes for t in s.threats} <= set(PAPER_THREATS)
    some = XRaySimulator(SimConfig(threat_rate=0.3, clutter_min=0, clutter_max=0, small_parts_max=0))
    rate = np.mean([bool(some.scene(s).threats) for s in range(120)])
    assert 0.18 < rate < 0.42


SIM_CONFIGS = sorted((Path(__file__).parents[1] / "configs" / "sim").glob("*.yaml"))


@pytest.mark.parametrize("path", SIM_CONFIGS, ids=lambda p: p.name)
def test_shipped_simulator_settings_load(path):
    cfg = load_config(path, SimConfig)
    assert XRaySimulator(cfg).render(0, 64).image.shape == (64, 64, 3)


def test_config_from_yaml_and_validation(tmp_path):
    path = tmp_path / "sim.yaml"
    path.write_text("threat_rate: 0.5\nthreat_classes: [Hammer, Pliers]\nfov_margin: [1.0, 1.1]\n")
    cfg = load_config(path, SimConfig)
    assert cfg.threat_rate == 0.5 and cfg.threat_classes == ("Hammer", "Pliers") and cfg.fov_margin == (1.0, 1.1)
    path.write_text("threat_classes: [Banana]\n")
    with pytest.raises(ConfigError, match="threat_classes"):
        load_config(path, SimConfig)
    path.write_text("photon: 3\n")
    with pytest.raises(ConfigError, match="photon"):
        load_config(path, SimConfig)
