"""One-shot protocol: scan selection, class mapping, per-unit scores on hand-made cases, a tiny end-to-end CLI run of
every part, resuming an interrupted run without re-projecting, and config errors."""

import json
from contextlib import chdir
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from train_fixtures import one_thread  # noqa: F401 - the shared one-thread autouse fixture

from baggan.cli import cli
from baggan.data.labelsets import PIDRAY
from baggan.evaluate import oneshot as os_
from baggan.evaluate import oneshot_data
from baggan.evaluate.oneshot_data import SimScans
from baggan.evaluate.oneshot_report import depth_section, unit_scores
from baggan.oneshot import class_table
from baggan.stylegan2 import NetworkConfig, build_generator, save_network
from baggan.stylegan2 import project_pool
from hfc.names import RAW_METHODS, SEGMENTERS

TINY_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "eval" / "oneshot-tiny.yaml"
TINY32 = NetworkConfig(cfg="custom", resolution=32, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256,
                       channel_max=32, num_fp16_res=0, d_architecture="resnet", mbstd_group_size=2)
ALL_PARTS = "main,shots,depth,layer,tau,dk,patch"


@pytest.fixture(scope="module")
def network(tmp_path_factory) -> Path:
    """A randomly initialised 32² generator file (noise strength 0.1, as a trained one has noise)."""
    torch.manual_seed(0)
    G = build_generator(TINY32).eval()
    for _, layer, _ in G.synthesis.conv_layers():
        layer.noise_strength.data.fill_(0.1)
    path = tmp_path_factory.mktemp("oneshot-net") / "G.pt"
    save_network(path, {"G_ema": G}, TINY32)
    return path


@pytest.fixture(scope="module")
def full_run(network, tmp_path_factory):
    """Every part of the tiny config, through the CLI."""
    out = tmp_path_factory.mktemp("oneshot") / "run"
    result = CliRunner().invoke(cli, ["evaluate", "oneshot", "--config", str(TINY_CONFIG), "--network", str(network),
                                      "--outdir", str(out), "--parts", ALL_PARTS, "--device", "cpu"])
    return out, result


def _write_config(path: Path, **changes) -> Path:
    data = yaml.safe_load(TINY_CONFIG.read_text())
    for key, value in changes.items():
        *parents, leaf = key.split(".")
        node = data
        for p in parents:
            node = node[p]
        node[leaf] = value
    path.write_text(yaml.safe_dump(data))
    return path


# --------------------------------------------------------------------------------------------- scans and classes

def test_per_category_sets_cover_every_category_and_nest():
    scans = SimScans(["Hammer", "Wrench", "Pliers"], 64, 3, 12, base_seed=0)
    sets = scans.annotated_sets(0, [1, 2], "per_category", 40)
    for k, chosen in sets.items():
        counts = {c: sum(c in s.categories(12) for s in chosen) for c in scans.category_ids}
        assert min(counts.values()) >= k, counts
        assert all(s.kind == "threat" and s.image.shape == (64, 64, 3) for s in chosen)
    assert [s.seed for s in sets[2][: len(sets[1])]] == [s.seed for s in sets[1]]  # 2-shot extends 1-shot
    assert len(sets[1]) <= 3  # greedy: scans holding several missing threats first
    other = scans.annotated_sets(1, [1], "per_category", 40)[1]
    assert {s.seed for s in other}.isdisjoint(s.seed for s in sets[2])  # repetitions draw different scans


def test_per_scan_sets_and_small_generators():
    scans = SimScans(["Hammer", "Wrench"], 32, 3, 4, base_seed=3)
    sets = scans.annotated_sets(0, [1, 3], "per_scan", 40)
    assert len(sets[1]) == 1 and len(sets[3]) == 3 and sets[3][0].seed == sets[1][0].seed
    assert all(s.image.shape == (32, 32, 3) and s.label.shape == (32, 32) and s.categories(4) for s in sets[3])
    test = scans.test_scans(3, 2)
    assert [s.kind for s in test] == ["threat"] * 3 + ["clean"] * 2
    assert all(s.categories() for s in test[:3]) and not any(s.categories() for s in test[3:])
    with pytest.raises(Exception, match="raise it"):
        scans.annotated_sets(0, [5], "per_scan", 3)


def test_class_table_maps_unannotated_threats_to_background():
    hammer, wrench, pliers = (PIDRAY.id_of(n) for n in ("Hammer", "Wrench", "Pliers"))
    train = [oneshot_data.EvalScan(0, "threat", np.zeros((2, 2, 3), np.uint8), np.array([[0, hammer], [0, 0]]), "x")]
    table = class_table([s.label for s in train], [wrench, hammer])
    assert table == [0, hammer]
    label = np.array([[hammer, wrench], [pliers, 0]])
    assert os_.to_classes(label, table).tolist() == [[1, 0], [0, 0]]


def test_unit_scores_on_a_hand_made_case():
    hammer = PIDRAY.id_of("Hammer")
    # test scan 0: 4 px, gt [H, H, 0, 0], pred [H, 0, 0, 0] → IoU 0.5; scan 1 (clean): pred [H, 0, 0, 0] → FP
    cms = np.array([[[2, 0], [1, 1]], [[3, 1], [0, 0]]])
    result = {"cms": cms, "classes": [0, hammer], "test_kinds": ["threat", "clean"], "train_miou": 1.0,
              "fit_seconds": 0.0}
    s = unit_scores(result, ["Hammer", "Wrench"])
    assert s["per_class"]["Hammer"]["iou"] == pytest.approx(0.5)
    assert s["per_class"]["Hammer"]["precision"] == pytest.approx(0.5)  # 1 TP (IoU 0.5 ≥ 0.5), 1 FP (clean scan)
    assert np.isnan(s["per_class"]["Wrench"]["iou"])  # not annotated in this repetition
    assert s["wiou"] == pytest.approx(0.5 * 0.5) and s["wiou_ceiling"] == pytest.approx(0.5)
    assert s["fg_iou"] == pytest.approx(0.5) and s["clean_fp"] == 1.0 and s["miou"] == pytest.approx(0.5)
    assert s["image_miou"].tolist() == [0.5, 0.0]


def test_depth_section_ranks_by_the_class_from_label_where_there_is_one():
    def row(miou: float, by_label: float) -> dict:
        return {"miou": (miou, 0.01), "miou_condition": (by_label, 0.02), "wiou": (0.1, 0.0), "fg_iou": (0.2, 0.0),
                "train_miou": (0.93, 0.01)}

    conditional = "\n".join(depth_section({("", "mlp1"): row(0.2, 0.5), ("", "mlp3"): row(0.3, 0.1)}))
    assert "| mlp1 | 20.00 ± 1.00 | 50.00 ± 2.00 | 10.00 ± 0.00 | 20.00 ± 0.00 | 93.00 ± 1.00 |" in conditional
    assert "Best by mIoU, class from label: mlp1" in conditional
    unconditional = "\n".join(depth_section({("", "mlp1"): row(0.2, np.nan), ("", "mlp3"): row(0.3, np.nan)}))
    assert "class from label" not in unconditional and "Best by mIoU: mlp3" in unconditional
    assert "| mlp3 | 30.00 ± 1.00 | 10.00 ± 0.00 | 20.00 ± 0.00 | 93.00 ± 1.00 |" in unconditional


# ------------------------------------------------------------------------------------------------- end to end

def test_tiny_run_writes_the_report(full_run):
    out, result = full_run
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert f"report: {out / 'oneshot.md'}" in result.output
    names = ["bars", "pd", "threats", "fps", "predictions", "shots", "depth", "layer", "tau", "dk", "patch"]
    for name in names:
        assert (out / f"oneshot_{name}.png").stat().st_size > 1000, name
    md = (out / "oneshot.md").read_text()
    for heading in ("Table 6 layout", "Table 5", "Few-shot (Table 10)", "Table 9", "Table 7", "Fig. 14a", "Fig. 14b",
                    "Fig. 14c", "Rows marked *paper*"):
        assert heading in md, heading
    data = json.loads((out / "oneshot.json").read_text())
    main = {row["row"]: row for row in data["summary"]["main"]}
    assert set(main) == {"Ours / MLP", "RepurposeGAN / MLP"}
    for part, rows in data["summary"].items():
        for row in rows:
            assert row["repetitions"] == (2 if part == "main" else 1)
            for key in ("miou", "wiou", "fg_iou", "precision", "clean_fp"):
                mean, std = row[key]
                assert mean is None or 0.0 <= mean <= 1.0, (part, key, mean)
                assert std is None or std >= 0.0
            assert set(row["per_class"]) == {"Hammer", "Wrench"}
            assert len(row["pd"]) == 20 and all(v is None or 0 <= v <= 1 for v in row["pd"])
    assert {r["group"] for r in data["summary"]["shots"]} == {"1-shot", "2-shot"}
    assert {r["row"] for r in data["summary"]["layer"]} == {"all (random)", "block 0"}
    assert set(data["fps"]) == {"generation only", "Ours / MLP", "RepurposeGAN / MLP"}
    assert all(v["fps_batch1"] > 0 and v["fps_batchN"] > 0 for v in data["fps"].values())
    assert data["paper"]["table6"]["Ours"]["Hammer"] == [70.58, 60.21]


def test_every_method_of_a_repetition_sees_the_same_scans(full_run):
    out, _ = full_run
    units = [json.loads(p.read_text()) for p in (out / "units").glob("*.json")]
    main = [u for u in units if u["key"]["shots"] == 1]
    by_rep: dict[int, set] = {}
    for u in main:
        by_rep.setdefault(u["key"]["rep"], set()).add(json.dumps([u["key"]["train"], u["key"]["test"]]))
    assert sorted(by_rep) == [0, 1] and all(len(v) == 1 for v in by_rep.values())
    assert by_rep[0] != by_rep[1]  # different annotated scans per repetition, same test scans
    for u in units:
        cms = np.asarray(u["result"]["cms"])
        assert cms.shape[0] == 3 and cms.sum() == 3 * 32 * 32


def test_an_interrupted_run_resumes_without_redoing_work(network, tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = ["evaluate", "oneshot", "--config", str(TINY_CONFIG), "--network", str(network), "--outdir", str(out)]
    real_unit, real_project = os_.run_unit, oneshot_data.project
    calls = {"unit": 0, "project": 0}

    def failing_unit(*a, **k):
        calls["unit"] += 1
        if calls["unit"] == 3:
            raise RuntimeError("killed")
        return real_unit(*a, **k)

    def counting_project(*a, **k):
        calls["project"] += 1
        return real_project(*a, **k)

    monkeypatch.setattr(os_, "run_unit", failing_unit)
    monkeypatch.setattr(oneshot_data, "project", counting_project)
    monkeypatch.setattr(project_pool, "project", counting_project)  # where the run's projections are made
    first = CliRunner().invoke(cli, args)
    assert isinstance(first.exception, RuntimeError) and not (out / "oneshot.md").exists()
    done = {p.name: p.stat().st_mtime_ns for p in (out / "units").glob("*.json")}
    assert len(done) == 2 and calls["project"] > 0
    calls.update(unit=0, project=0)
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0, second.output + repr(second.exception)
    assert calls == {"unit": 2, "project": 0}  # 4 main units: 2 cached, 2 run; no scan projected again
    assert all((out / "units" / n).stat().st_mtime_ns == t for n, t in done.items())


@pytest.mark.parametrize("change,key", [
    ({"fit.standardize": ["mlp1"], "fit.lbfgs": ["mlp1"]}, {"standardize": True, "optimizer": "lbfgs"}),
    ({"fit.views": ["mlp1"], "fit.views_per_sample": 2},
     {"views": {"per_sample": 2, "tau_p": 0.5, "min_resolution": 8}}),
    ({"fit.balance": ["mlp1"], "fit.balance_power": 0.5}, {"class_balance": 0.5}),
], ids=["standardize-lbfgs", "views", "balance"])
def test_fit_options_rerun_only_the_segmenters_they_name(network, tmp_path, monkeypatch, change, key):
    out = tmp_path / "run"
    args = ["evaluate", "oneshot", "--network", str(network), "--outdir", str(out)]
    assert CliRunner().invoke(cli, [*args, "--config", str(TINY_CONFIG)]).exit_code == 0
    before = {p.name for p in (out / "units").glob("*.json")}
    seen = []
    real_unit = os_.run_unit

    def recording_unit(ws, unit, *a, **k):
        seen.append(unit.row)
        return real_unit(ws, unit, *a, **k)

    monkeypatch.setattr(os_, "run_unit", recording_unit)
    cfg = _write_config(tmp_path / "std.yaml", **change)
    result = CliRunner().invoke(cli, [*args, "--config", str(cfg)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    methods = yaml.safe_load(TINY_CONFIG.read_text())["methods"]
    mlp_on_codes = {os_.METHODS[m].label for m in methods if os_.METHODS[m].segmenter == "mlp1" and not os_.METHODS[m].raw}
    assert mlp_on_codes and set(seen) == mlp_on_codes  # baselines and FCNs came from the cache
    after = {p.name for p in (out / "units").glob("*.json")}
    assert len(after - before) == len(seen)
    unit = json.loads(next(iter((out / "units" / n) for n in after - before)).read_text())
    assert {k: unit["key"]["fit"].get(k) for k in key} == key


@pytest.mark.parametrize("path", sorted(TINY_CONFIG.parent.glob("oneshot-*.yaml")), ids=lambda p: p.name)
def test_the_shipped_protocol_configs_load(path):
    from baggan.evaluate.oneshot_config import load_oneshot_config

    cfg = load_oneshot_config(path)
    assert cfg.methods and set(cfg.fit.image) <= {*SEGMENTERS, *RAW_METHODS}


def test_the_window_preset_is_the_protocols_d8_encoder():
    """configs/hfc/xray-windows.yaml (the quick-start's) is the encoder the D = 8 protocol trains and chose."""
    from baggan.config import load_config
    from baggan.evaluate.oneshot_config import load_oneshot_config
    from hfc.config import HFCConfig

    root = TINY_CONFIG.parents[1]
    cfg = load_oneshot_config(TINY_CONFIG.parent / "oneshot-windows-d8-cpu.yaml")
    with chdir(root.parent):  # the config names its HFC file from the repository root
        protocol = os_.hfc_variants(cfg, ["main"], num_blocks=5, resolution=64)[0]["swav"]
    preset = load_config(root / "hfc" / "xray-windows.yaml", HFCConfig)
    assert preset == protocol and preset.dim == 8
    assert yaml.safe_load((root / "quickstart.yaml").read_text())["hfc"] == "configs/hfc/xray-windows.yaml"


# ------------------------------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("change,message", [
    ({"bogus": 1}, "bogus: unknown key"),
    ({"methods": ["ours-mlp", "nope"]}, "unknown method 'nope'"),
    ({"scans.categories": ["Hammer", "Axe"]}, "unknown category 'Axe'"),
    ({"scans.repetitions": 0}, "repetitions: must be ≥ 1"),
    ({"shots.shots": [0, 1]}, "shots.shots: needs shot counts ≥ 1"),
    ({"hfc_overrides": {"swav": {"bogus": 1}}}, "swav.bogus: unknown key"),
    ({"hfc": "no/such.yaml"}, "HFC config not found"),
    ({"ablation.blocks": [9]}, "block 9 does not exist"),
    ({"ablation.patch_sizes": [64]}, "larger than the 32px scans"),
    ({"fit.standardize": ["mlp2"]}, "standardize: unknown segmenter(s) ['mlp2']"),
    ({"fit.image": ["rgb"]}, "image: unknown segmenter(s) or baseline(s) ['rgb']"),
    ({"fit.lbfgs": ["fcn4"]}, "lbfgs: unknown segmenter(s) ['fcn4']"),
    ({"fit.views": ["rgb"]}, "views: unknown segmenter(s) or baseline(s) ['rgb']"),
    ({"fit.views_per_sample": 0}, "views_per_sample: must be ≥ 1"),
    ({"fit.balance": ["rgb"]}, "balance: unknown segmenter(s) or baseline(s) ['rgb']"),
    ({"fit.balance_power": -1.0}, "balance_power: must be ≥ 0"),
    ({"fit.threat_threshold": 1.0}, "threat_threshold: must lie in (0, 1)"),
    ({"methods": ["ours-mlp", "image-mlp"]}, "image-mlp (the control on the image alone) needs fit.image"),
])
def test_config_errors_are_one_line(network, tmp_path, change, message):
    cfg = _write_config(tmp_path / "c.yaml", **{**{"parts": ["layer", "patch"]}, **change})
    result = CliRunner().invoke(cli, ["evaluate", "oneshot", "--config", str(cfg), "--network", str(network),
                                      "--outdir", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output + repr(result.exception)
    assert message in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("args,message", [
    (["--parts", "main,bogus"], "unknown part bogus"),
    (["--network", "missing.pt"], "missing.pt: generator file not found"),
    ([], "no generator"),
])
def test_option_errors(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["evaluate", "oneshot", "--config", str(TINY_CONFIG), "--outdir",
                                      str(tmp_path / "out"), *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_rank_sentences_share_ranks_between_ties():
    """The findings' ranking: strictly better rows are 'above', equal ones share the rank, all-equal says so."""
    from baggan.evaluate.oneshot_report import _rank_sentence

    rows = {"A": {"m": (0.5, 0.0)}, "Ours": {"m": (0.2, 0.0)}, "B": {"m": (0.2, 0.0)}, "C": {"m": (float("nan"), 0.0)}}
    text = _rank_sentence(rows, "m", ["Ours"], "mIoU")
    assert text.startswith("Ours ranks 2 of 4 by mIoU (20.00 %), tied with 1 other(s); above it: A (50.00).")
    same = {name: {"m": (0.0, 0.0)} for name in ("Ours", "A", "B")}
    assert _rank_sentence(same, "m", ["Ours"], "precision") == "Ours: every method has the same precision (0.00 %), no ranking."
    assert _rank_sentence({"Ours": {"m": (0.9, 0.0)}, "A": {"m": (0.1, 0.0)}}, "m", ["Ours"], "x").endswith("— the best.")


def test_local_loss_verdict_needs_a_gap_beyond_the_noise():
    """'It helps' only when the gap of the means exceeds two standard errors of their difference."""
    from baggan.evaluate.oneshot_report import _verdict

    assert _verdict((0.0387, 0.0257), (0.0383, 0.0259), 5).startswith("no clear difference")
    assert _verdict((0.30, 0.01), (0.20, 0.01), 5) == "it helps, as in the paper."
    assert _verdict((0.20, 0.01), (0.30, 0.01), 5).startswith("it does not help here")
