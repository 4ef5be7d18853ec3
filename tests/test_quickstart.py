"""`baggan quickstart` end to end on a tiny randomly initialised generator (the real one is too slow for tests)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from baggan.cli import cli
from baggan.data.coco import CocoDataset, dataset_dirs
from baggan.data.labelsets import PIDRAY
from baggan.quickstart import DEFAULT_CONFIG, load_quickstart_config
from baggan.stylegan2 import NetworkConfig, build_generator, save_network

ROOT = Path(__file__).resolve().parents[1]
TINY = NetworkConfig(cfg="custom", resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256,
                     channel_max=32, num_fp16_res=0, d_architecture="resnet", mbstd_group_size=2)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny quick-start: (outdir, config path, network path, CliRunner result)."""
    tmp = tmp_path_factory.mktemp("qs")
    net = tmp / "g.pt"
    save_network(net, {"G_ema": build_generator(TINY).eval()}, TINY)
    cfg = {"network": str(net), "hfc": str(ROOT / "configs/hfc/tiny.yaml"), "hfc_epochs": 2, "projector_steps": 3,
           "categories": ["Hammer", "Wrench"], "example": {"candidates": 10, "min_pixels": 2},
           "fit": {"segmenter": "mlp1", "hidden": 8, "epochs": 3}, "test": {"threat": 2, "clean": 1},
           "synth": {"n": 5, "shard_size": 3, "batch": 2, "min_area": 0}, "threads": 1}
    path = tmp / "qs.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(cli, ["quickstart", "--outdir", str(tmp / "out"), "--config", str(path)])
    return tmp / "out", path, net, result


def test_quickstart_runs_every_stage_and_writes_a_report(run):
    out, _, _, r = run
    assert r.exit_code == 0, r.output
    for f in ("hfc/encoder.pt", "example/segmenter.pt", "example/fit.png", "example/scan.png", "example/mask.png",
              "eval/scores.json", "eval/heldout.png", "grid.png", "report.md", "summary.json", "timings.json"):
        assert (out / f).is_file(), f
    mask = np.asarray(__import__("cv2").imread(str(out / "example/mask.png"), 0))
    shown = set(np.unique(mask).tolist()) - {0}
    assert shown and shown <= {PIDRAY.id_of("Hammer"), PIDRAY.id_of("Wrench")}
    scores = json.loads((out / "eval/scores.json").read_text())
    assert len(scores["test_scans"]) == 3 and 0.0 <= scores["miou"] <= 1.0
    assert scores["categories"][0] == "background" and len(scores["iou"]) == len(scores["categories"])
    total = sum(len(CocoDataset(d)) for d in dataset_dirs(out / "coco"))
    assert total == 5
    report = (out / "report.md").read_text()
    assert f"{scores['miou']:.3f}" in report and "![grid](grid.png)" in report
    assert set(json.loads((out / "timings.json").read_text())) == {"hfc", "example", "eval", "coco", "report"}


def test_quickstart_rerun_skips_finished_stages(run):
    out, path, _, _ = run
    before = (out / "example/segmenter.pt").stat().st_mtime_ns
    r = CliRunner().invoke(cli, ["quickstart", "--outdir", str(out), "--config", str(path)])
    assert r.exit_code == 0, r.output
    assert (out / "example/segmenter.pt").stat().st_mtime_ns == before
    assert "wrote" not in r.output  # the COCO data set was complete: nothing synthesised again


def test_quickstart_refuses_to_mix_in_a_run_of_another_generator(run, tmp_path):
    out, path, _, _ = run
    other = tmp_path / "other.pt"
    torch.manual_seed(1)
    save_network(other, {"G_ema": build_generator(TINY).eval()}, TINY)
    cfg = yaml.safe_load(path.read_text())
    cfg["network"] = str(other)
    path2 = tmp_path / "qs.yaml"
    path2.write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(cli, ["quickstart", "--outdir", str(out), "--config", str(path2)])
    assert r.exit_code == 2, r.output
    assert "holds a quick-start run of another generator" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_quickstart_missing_network_is_one_line(tmp_path):
    r = CliRunner().invoke(cli, ["quickstart", "--outdir", str(tmp_path / "o"), "--network", str(tmp_path / "no.pt")])
    assert r.exit_code == 2 and "generator file not found" in r.output and "Traceback" not in r.output


def test_quickstart_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("synth: {n: 3, colour: red}\n")
    r = CliRunner().invoke(cli, ["quickstart", "--outdir", str(tmp_path / "o"), "--config", str(bad)])
    assert r.exit_code == 2 and "colour" in r.output


def test_zero_workers_is_refused_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("workers: 0\n")
    r = CliRunner().invoke(cli, ["quickstart", "--outdir", str(tmp_path / "o"), "--config", str(bad)])
    assert r.exit_code == 2 and "workers" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()


def test_default_config_loads_and_points_at_the_shipped_files():
    cfg = load_quickstart_config(DEFAULT_CONFIG)
    assert (ROOT / cfg.hfc).is_file() and (ROOT / cfg.network).is_file()
    assert cfg.synth.n >= 100 and cfg.example.candidates >= 1


def test_zero_hfc_epochs_is_refused_naming_the_key(tmp_path):
    r = CliRunner().invoke(cli, ["quickstart", "--outdir", str(tmp_path / "o"), "--hfc-epochs", "0"])
    assert r.exit_code == 2 and "epochs" in r.output and "Traceback" not in r.output


TINY_WINDOWS = "threat_classes: [Hammer, Wrench]\nmax_threats: 1\nclutter_min: 0\nclutter_max: 1\nsmall_parts_max: 0\n" \
               "window: {share: [0.6, 0.9], negatives: 0.1}\n"


@pytest.fixture(scope="module")
def windows_run(tmp_path_factory):
    """One tiny quick-start on threat windows with a conditional generator: (outdir, config dict, CliRunner result)."""
    import dataclasses

    tmp = tmp_path_factory.mktemp("qs-windows")
    torch.manual_seed(0)
    cfg = dataclasses.replace(TINY, c_dim=len(PIDRAY.names))
    net = tmp / "g.pt"
    save_network(net, {"G_ema": build_generator(cfg).eval()}, cfg)
    (tmp / "windows.yaml").write_text(TINY_WINDOWS)
    qs = {"network": str(net), "windows": str(tmp / "windows.yaml"), "hfc": str(ROOT / "configs/hfc/tiny.yaml"),
          "hfc_epochs": 2, "projector_steps": 3, "categories": ["Hammer", "Wrench"],
          "example": {"candidates": 40, "min_pixels": 2},
          "fit": {"segmenter": "mlp1", "hidden": 8, "epochs": 3, "image": True, "standardize": True},  # as shipped
          "test": {"threat": 3, "clean": 1}, "synth": {"n": 6, "shard_size": 3, "batch": 2, "min_area": 0,
                                                 "class_from": "condition"},
          "threads": 1, "workers": 2}  # as shipped: projections in 2 worker processes
    path = tmp / "qs.yaml"
    path.write_text(yaml.safe_dump(qs))
    result = CliRunner().invoke(cli, ["quickstart", "--outdir", str(tmp / "out"), "--config", str(path)])
    return tmp / "out", qs, result


def test_quickstart_on_windows_annotates_one_window_per_class(windows_run):
    out, qs, r = windows_run
    assert r.exit_code == 0, r.output
    for f in ("example/fit.png", "example/scan-0.png", "example/mask-1.png", "eval/heldout.png", "grid.png",
              "report.md"):
        assert (out / f).is_file(), f
    ids = sorted(PIDRAY.id_of(c) for c in qs["categories"])
    shown = [sorted(set(np.unique(__import__("cv2").imread(str(out / f"example/mask-{k}.png"), 0)).tolist()) - {0})
             for k in range(2)]
    assert sorted(c for s in shown for c in s) == ids  # ONE window per category, one threat each
    scores = json.loads((out / "eval/scores.json").read_text())
    assert [k for k, _ in scores["test_scans"]] == ["threat"] * 3 + ["clean"]
    assert scores["categories"] == ["background", "Hammer", "Wrench"]
    assert 0.0 <= scores["miou"] <= 1.0 and all(v is None or 0.0 <= v <= 1.0 for v in scores["iou"])
    index = json.loads((out / "coco/index.json").read_text())
    assert index["totals"]["images"] == 6 and sorted(index["settings"]["inputs"]["labels"]) == [i - 1 for i in ids]
    summary = json.loads((out / "summary.json").read_text())
    assert sum(summary["labels_drawn"].values()) == 6 and set(summary["labels_drawn"]) <= set(qs["categories"])
    report = (out / "report.md").read_text()
    assert "ONE simulator window per threat category" in report and f"{scores['miou']:.3f}" in report
    assert "![held-out](eval/heldout.png)" in report
    assert "1 − p(background) > 0.5, `synth.threat_threshold`" in report  # the rule it was scored with
    from baggan.quickstart import _segmenter_meta

    assert _segmenter_meta(out)["image_channels"] == 3 and "codes + image" in report  # fit.image: the colours too


def test_quickstart_windows_take_the_drawn_label_as_the_class(windows_run):
    from baggan.data.coco import CocoDataset, dataset_dirs
    from baggan.stylegan2 import load_feature_generator
    from baggan.synth.build import drawn_category

    out, qs, r = windows_run
    assert r.exit_code == 0, r.output
    scores = json.loads((out / "eval/scores.json").read_text())
    cond = scores["condition"]
    assert 0.0 <= cond["miou"] <= 1.0 and 0.0 <= cond["threat_iou"] <= 1.0 and 0.0 <= scores["threat_iou"] <= 1.0
    gen = load_feature_generator(qs["network"])
    gen.draw_among(json.loads((out / "coco/index.json").read_text())["settings"]["inputs"]["labels"])
    seen = set()
    for ds in map(CocoDataset, dataset_dirs(out / "coco")):
        for i, rec in enumerate(ds.images):
            ids = set(np.unique(ds.read_label(i)).tolist()) - {0}
            assert ids <= {drawn_category(gen, rec["z_seed"])}, (rec["z_seed"], ids)
            seen |= ids
    assert seen  # some threat pixels were written, each with its window's label
    assert "classes from the label" in (out / "report.md").read_text()


def test_quickstart_windows_annotate_the_best_projected_of_several_tries(windows_run, tmp_path):
    from baggan.quickstart import Quickstart, _segmenter_meta, load_quickstart_config

    _, qs, _ = windows_run
    path = tmp_path / "qs.yaml"
    path.write_text(yaml.safe_dump(dict(qs, example=dict(qs["example"], tries=2))))
    lines = []
    q = Quickstart(load_quickstart_config(path), tmp_path / "out", torch.device("cpu"), progress=False,
                   echo=lines.append)
    groups = q.candidate_groups()
    assert [len(g) for g in groups] == [2, 2]
    assert all(len({int(s.label.max()) for s in g}) == 1 for g in groups)  # a group holds one category
    q.fit_example(q.train_encoder())
    psnr = _segmenter_meta(tmp_path / "out")["projection_psnr"]
    assert len(psnr) == 2 and "best projected of 2" in lines[-1]
    for k, group in enumerate(groups):  # the kept candidate is the group's best reconstruction
        tried = [s.projection.psnr for s in q.project_scans(group, [""] * len(group), [""] * len(group), "")]
        assert psnr[k] == pytest.approx(max(tried))
        assert str(group[int(np.argmax(tried))].seed) in lines[-1]


def test_quickstart_windows_option_errors_are_one_line(tmp_path):
    (tmp_path / "bags.yaml").write_text("threat_rate: 0.5\n")
    (tmp_path / "knives.yaml").write_text(TINY_WINDOWS.replace("[Hammer, Wrench]", "[Knife]"))
    for sim, words in ((tmp_path / "none.yaml", "simulator config not found"), (tmp_path / "bags.yaml", "no window"),
                      (tmp_path / "knives.yaml", "never appear in the windows")):
        path = tmp_path / "qs.yaml"
        path.write_text(yaml.safe_dump({"windows": str(sim), "categories": ["Hammer"]}))
        r = CliRunner().invoke(cli, ["quickstart", "--outdir", str(tmp_path / "o"), "--config", str(path)])
        assert r.exit_code == 2 and words in r.output and "Traceback" not in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1, r.output


def test_a_conditional_generator_draws_its_labels_among_its_classes():
    import dataclasses

    from baggan.stylegan2 import StyleGANFeatureGenerator
    from baggan.stylegan2.latents import map_z

    G = build_generator(dataclasses.replace(TINY, c_dim=len(PIDRAY.names))).eval()
    gen = StyleGANFeatureGenerator(G, classes=[2, 7])
    labels = [int(gen.draw(1, s)[1][0]) for s in range(40)]
    assert set(labels) == {2, 7}
    z, idx = gen.draw(3, 5)
    c = torch.nn.functional.one_hot(torch.from_numpy(idx).long(), G.c_dim)
    assert torch.equal(gen.sample_ws(3, 0.7, 5), map_z(G, z, 0.7, c))
    rng = np.random.RandomState(3)  # default: any of the c_dim classes, drawn after z as before
    z0, c0 = rng.randn(4, G.z_dim), rng.randint(G.c_dim, size=4)
    z1, c1 = StyleGANFeatureGenerator(G).draw(4, 3)
    assert np.array_equal(z0, z1) and np.array_equal(c0, c1)
