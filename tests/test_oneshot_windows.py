"""One-shot protocol on threat windows (issue 20): windows drawn when scans.sim is set, threat-free windows carry no
threat, a conditional generator's projection starts from the window's own label, the oracle rows are fitted on
oracle.train scans, and the config errors of both."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from test_evaluate_oneshot import TINY32, _write_config
from train_fixtures import one_thread  # noqa: F401 - the shared one-thread autouse fixture

from baggan.cli import cli
from baggan.config import load_config
from baggan.data.labelsets import PIDRAY
from baggan.data.xray.window import WindowConfig
from baggan.data.xraysim import SimConfig, XRaySimulator
from baggan.evaluate import oneshot_data
from baggan.evaluate.oneshot_data import ProjectionCache, SimScans
from baggan.stylegan2 import build_generator, save_network
from baggan.stylegan2.projector import ProjectorConfig, w_stats

ROOT = Path(__file__).resolve().parents[1]
WINDOWS = ROOT / "configs" / "sim" / "threat-windows-64-clean.yaml"
TINY_SIM = "threat_classes: [Hammer, Wrench]\nmax_threats: 1\nclutter_min: 0\nclutter_max: 1\nsmall_parts_max: 0\n" \
           "window: {share: [0.6, 0.9], negatives: 0.1}\n"


@pytest.fixture(scope="module")
def conditional_network(tmp_path_factory) -> Path:
    """A randomly initialised 32² generator conditional on 12-dim PIDRay multi-hot labels."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(TINY32, c_dim=len(PIDRAY.names))
    path = tmp_path_factory.mktemp("windows-net") / "G.pt"
    save_network(path, {"G_ema": build_generator(cfg).eval()}, cfg)
    return path


def test_window_draw_keeps_a_seeds_window_and_forces_its_kind():
    mixed = load_config(WINDOWS, SimConfig)
    sims = {d: XRaySimulator(dataclasses.replace(mixed, window=dataclasses.replace(mixed.window, draw=d)))
            for d in ("mixed", "threat", "negative")}
    kinds = {d: [bool(sims[d].scene(s).threats) for s in range(30)] for d in sims}
    assert all(kinds["threat"]) and not any(kinds["negative"]) and 0 < sum(kinds["mixed"]) < 30
    for s in (i for i, has in enumerate(kinds["mixed"]) if has):  # a positive seed keeps its window
        assert sims["threat"].scene(s).view == sims["mixed"].scene(s).view
    with pytest.raises(Exception, match="window.draw"):
        WindowConfig(draw="sometimes")


def test_windows_are_drawn_when_scans_sim_is_set():
    sim = load_config(WINDOWS, SimConfig)
    scans = SimScans(["Hammer", "Wrench"], 32, 3, 4, base_seed=0, windows=sim)
    bags = SimScans(["Hammer", "Wrench"], 32, 3, 4, base_seed=0)
    test = scans.test_scans(3, 2)
    assert [s.kind for s in test] == ["threat"] * 3 + ["clean"] * 2
    for s in test[:3]:  # one threat per window (max_threats 1), large in the window, the label it was trained with
        assert len(s.present) == 1 and s.categories(4) == list(s.present)
        assert (s.label > 0).mean() > 0.05
        assert s.condition().tolist() == [float(i + 1 in s.present) for i in range(len(PIDRAY.names))]
    for s in test[3:]:  # threat-free windows carry no threat
        assert s.present == () and not s.label.any() and not s.condition().any()
    assert scans.sim_keys["threat"] != bags.sim_keys["threat"] and scans.sim_keys["clean"] != scans.sim_keys["threat"]
    assert (bags.render(test[0].seed, "threat").image != test[0].image).any()
    oracle = scans.oracle_scans(4)
    assert len(oracle) == 4 and {s.seed for s in oracle}.isdisjoint(s.seed for s in test)
    sets = scans.annotated_sets(0, [1], "per_category", 60)[1]
    assert sorted(c for s in sets for c in s.present) == sorted(scans.category_ids)  # one window per class


def test_a_conditional_projection_starts_from_the_windows_label(conditional_network, tmp_path, monkeypatch):
    from baggan.stylegan2 import load_network

    G = load_network(conditional_network, torch.device("cpu"))["G_ema"]
    c = torch.zeros(G.c_dim)
    c[PIDRAY.id_of("Hammer") - 1] = 1
    assert not torch.allclose(w_stats(G, 64, 0, c)[0], w_stats(G, 64, 0)[0])
    with pytest.raises(Exception, match="conditional on 12 labels"):
        w_stats(G, 8, 0, torch.zeros(3))
    seen = []
    real = oneshot_data.project
    monkeypatch.setattr(oneshot_data, "project", lambda *a, **k: seen.append(k["c"]) or real(*a, **k))
    scans = SimScans(["Hammer", "Wrench"], 32, 3, 4, base_seed=0, windows=load_config(WINDOWS, SimConfig))
    scan = scans.test_scans(1, 0)[0]
    ProjectionCache(tmp_path, G, "0" * 64, ProjectorConfig(steps=1, w_avg_samples=16)).get(scan)
    assert seen and torch.equal(seen[0], scan.condition())


def test_tiny_windows_run_with_oracle_rows(conditional_network, tmp_path):
    (tmp_path / "sim.yaml").write_text(TINY_SIM)
    cfg = _write_config(tmp_path / "c.yaml", **{"scans.sim": str(tmp_path / "sim.yaml"), "oracle": {"train": 3},
                                                "methods": ["ours-mlp", "repurpose-mlp"],
                                                "fit.image": ["mlp1", "repurpose-mlp"]})
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["evaluate", "oneshot", "--config", str(cfg), "--network",
                                      str(conditional_network), "--outdir", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    data = json.loads((out / "oneshot.json").read_text())
    rows = {r["row"]: r for r in data["summary"]["main"]}
    assert set(rows) == {"Ours / MLP", "RepurposeGAN / MLP", "Oracle: Ours / MLP", "Oracle: RepurposeGAN / MLP"}
    assert rows["Oracle: Ours / MLP"]["repetitions"] == 1 and rows["Ours / MLP"]["repetitions"] == 2
    units = [json.loads(p.read_text()) for p in (out / "units").glob("*.json")]
    oracle = [u for u in units if u["unit"]["oracle"]]
    assert len(oracle) == 2 and all(u["key"]["shots"] == 3 and len(u["key"]["train"]) == 3 for u in oracle)
    assert len({json.dumps(u["key"]["test"]) for u in units}) == 1  # every row on the same test windows
    assert len(data["info"]["oracle"]) == 3 and data["info"]["scans"] == str(tmp_path / "sim.yaml")
    md = (out / "oneshot.md").read_text()
    assert "Oracle: Ours / MLP (fitted on 3 projected scans" in md
    # both segmenters read the image (fit.image), and each window is also scored with its class from its label
    assert all(u["key"]["fit"]["image"] is True for u in units)
    assert "mIoU, class from label" in md and "↳ class from label" in md
    for u in units:
        by_label, kinds = np.asarray(u["result"]["cms_condition"]), np.asarray(u["result"]["test_kinds"])
        assert by_label.shape == np.asarray(u["result"]["cms"]).shape
        assert by_label[kinds == "clean"][:, :, 1:].sum() == 0  # a threat-free label allows no threat class
        assert (by_label.sum((1, 2)) == np.asarray(u["result"]["cms"]).sum((1, 2))).all()


def test_a_higher_threat_threshold_marks_fewer_pixels_from_the_same_fit(conditional_network, tmp_path):
    (tmp_path / "sim.yaml").write_text(TINY_SIM)
    units = {}
    for t in (0.5, 0.9):
        cfg = _write_config(tmp_path / f"c{t}.yaml", **{"scans.sim": str(tmp_path / "sim.yaml"), "methods": ["ours-mlp"],
                                                        "fit.image": ["mlp1"], "fit.threat_threshold": t})
        result = CliRunner().invoke(cli, ["evaluate", "oneshot", "--config", str(cfg), "--network",
                                          str(conditional_network), "--outdir", str(tmp_path / f"run{t}"), "--device",
                                          "cpu"])
        assert result.exit_code == 0, result.output + repr(result.exception)
        units[t] = sorted((json.loads(p.read_text()) for p in (tmp_path / f"run{t}" / "units").glob("*.json")),
                          key=lambda u: u["unit"]["rep"])
    assert all("threat_threshold" not in u["key"]["fit"] for u in units[0.5])  # 0.5: the key of older runs
    assert all(u["key"]["fit"]["threat_threshold"] == 0.9 for u in units[0.9])
    for a, b in zip(units[0.5], units[0.9]):
        assert np.array_equal(a["result"]["cms"], b["result"]["cms"])  # the same fit: its own classes unchanged
        threat = [np.asarray(u["result"]["cms_condition"])[:, :, 1:].sum() for u in (a, b)]
        assert threat[1] < threat[0]


@pytest.mark.parametrize("change,message", [
    ({"scans.sim": "no/such.yaml"}, "scans.sim: no/such.yaml: simulator config not found"),
    ({"oracle": {"train": -1}}, "train: must be ≥ 0"),
    ({"oracle": {"train": 2, "methods": ["nope"]}}, "unknown method 'nope'"),
])
def test_windows_config_errors_are_one_line(conditional_network, tmp_path, change, message):
    cfg = _write_config(tmp_path / "c.yaml", **change)
    result = CliRunner().invoke(cli, ["evaluate", "oneshot", "--config", str(cfg), "--network",
                                      str(conditional_network), "--outdir", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output + repr(result.exception)
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_a_sim_config_without_window_is_refused(conditional_network, tmp_path):
    (tmp_path / "bags.yaml").write_text(yaml.safe_dump({"threat_rate": 0.5}))
    cfg = _write_config(tmp_path / "c.yaml", **{"scans.sim": str(tmp_path / "bags.yaml")})
    result = CliRunner().invoke(cli, ["evaluate", "oneshot", "--config", str(cfg), "--network",
                                      str(conditional_network), "--outdir", str(tmp_path / "out")])
    assert result.exit_code == 2 and "has no window: block" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bags.yaml", "c.yaml"]
