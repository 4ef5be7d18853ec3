"""Downstream protocol: DeepLabV3 / SDANet shapes and training, data plumbing, a tiny end-to-end CLI run."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from evaluate_shapes import make_shapes_set, one_thread  # noqa: F401 (autouse fixture)

from baggan.cli import cli
from baggan.config import load_config
from baggan.data.coco import CocoDataset, CocoWriter
from baggan.errors import ConfigError, UserError
from baggan.evaluate import downstream as ds
from baggan.evaluate.deeplab import DeepLabV3
from baggan.evaluate.resnet import ResNet, load_backbone_weights
from baggan.evaluate.sdanet import SDANet

TINY = {"resolution": 32, "steps": 2, "batch_size": 2, "lr": 0.01, "ratios": [0, 1], "seeds": [0], "num_real": 3,
        "max_test": 3, "show": 2,
        "models": [{"name": "deeplabv3", "depth": 18, "width": 8, "output_stride": 8, "head_channels": 8},
                   {"name": "sdanet", "depth": 18, "width": 8, "head_channels": 8}]}


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """Real, synthetic and test sets of 32² shapes scans (synthetic colours shifted)."""
    root = tmp_path_factory.mktemp("downstream")
    return {"real": make_shapes_set(root / "real", 4, 32, seed=1),
            "synthetic": make_shapes_set(root / "synthetic", 4, 32, seed=2, shift=15),
            "test": make_shapes_set(root / "test", 3, 32, seed=3)}


@pytest.mark.parametrize("depth,stride,expected", [(18, 8, [4, 8, 8, 8]), (50, 16, [4, 8, 16, 16]),
                                                   (34, 32, [4, 8, 16, 32])])
def test_resnet_strides_and_channels(depth, stride, expected):
    net = ResNet(depth, width=8, output_stride=stride)
    feats = net(torch.zeros(1, 3, 64, 64))
    assert net.strides == expected
    assert [f.shape[1] for f in feats] == net.channels
    assert [f.shape[2] for f in feats] == [64 // s for s in expected]


@pytest.mark.parametrize("model", [DeepLabV3(5, depth=18, width=8, output_stride=8, aspp_channels=16),
                                   DeepLabV3(5, depth=50, width=8, output_stride=16, aspp_channels=16),
                                   SDANet(5, depth=18, width=8, fpn_channels=16, head_channels=8)])
def test_segmenter_output_shapes(model):
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 5, 64, 64)
        assert model(torch.randn(1, 3, 64, 96)).shape == (1, 5, 64, 96)  # not square


def test_two_training_steps_change_the_model(sets):
    cfg = ds.DownstreamConfig(**{**TINY, "models": [ds.ModelConfig(**m) for m in TINY["models"]]})
    data = CocoDataset(sets["real"])
    source = ds.ScanSource(data, ds.resolve_categories(data, None), 32, cache=True)
    train = ds.TrainingSet([(source, i) for i in range(len(data))], ds.build_augment(cfg.augment, 0))
    x, y = train[0]
    assert x.shape == (3, 32, 32) and y.shape == (32, 32) and y.dtype == torch.int64
    for mc in cfg.models:
        model = ds.build_model(mc, 4)
        before = [p.detach().clone() for p in model.parameters()]
        run = ds.train_segmenter(model, train, cfg, 0, torch.device("cpu"), mc.name)
        assert np.isfinite(run.final_loss) and run.steps == run.best_step == 2 and np.isnan(run.val_miou)
        assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_early_stopping_keeps_the_best_weights(sets):
    """With a validation score, a run stops after `patience` scores without improvement, before the cap, and ends
    with the weights of its best score (here a scripted score: best at step 4, then worse)."""
    cfg = ds.DownstreamConfig(**{**TINY, "steps": 40, "eval_every": 2, "patience": 3,
                                 "models": [ds.ModelConfig(**TINY["models"][1])]})
    data = CocoDataset(sets["real"])
    source = ds.ScanSource(data, ds.resolve_categories(data, None), 32, cache=True)
    train = ds.TrainingSet([(source, i) for i in range(len(data))], ds.build_augment(cfg.augment, 0))
    model = ds.build_model(cfg.models[0], 4)
    scores, kept = iter([0.1, 0.3, 0.2, 0.25, 0.05, 0.9]), {}

    def validate(m):
        kept[len(kept) + 1] = {k: v.detach().clone() for k, v in m.state_dict().items()}
        return next(scores)

    run = ds.train_segmenter(model, train, cfg, 0, torch.device("cpu"), "sdanet", validate)
    assert run.steps == 10 and run.best_step == 4 and run.val_miou == 0.3
    assert [s for s, _ in run.val_history] == [2, 4, 6, 8, 10]
    assert all(torch.equal(v, kept[2][k]) for k, v in model.state_dict().items())
    assert not all(torch.equal(v, kept[5][k]) for k, v in model.state_dict().items())


def test_dice_loss_by_hand():
    target = torch.tensor([[[0, 1], [1, 1]]])  # 3 foreground pixels of class 1, K = 2
    right = torch.where(target == 1, 20.0, -20.0)[:, None]
    logits = torch.cat([-right, right], dim=1)  # confident and correct
    assert ds.dice_loss(logits, target).item() == pytest.approx(1 - (2 * 3 + 1) / (3 + 3 + 1), abs=1e-6)
    assert ds.dice_loss(-logits, target).item() == pytest.approx(1 - 1 / (1 + 3 + 1), abs=1e-6)  # all wrong


def test_augmentation_is_seeded_and_its_steps_independent():
    rng = np.random.default_rng(0)
    image, label = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), np.zeros((32, 32), np.uint8)
    runs = [[ds.build_augment(ds.AugmentConfig(), seed)(image=image, mask=label)["image"] for _ in range(160)]
            for seed in (0, 0, 1)]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1]))  # same seed, same stream
    assert not all(np.array_equal(a, b) for a, b in zip(runs[0], runs[2]))
    # 4 steps at p = 0.5: untouched 1/16 of the time if independent, 1/2 if they moved in lockstep
    assert np.mean([np.array_equal(a, image) for a in runs[0]]) < 0.15


def test_letterbox_keeps_aspect_and_labels():
    image = np.zeros((30, 60, 3), np.uint8)
    label = np.zeros((30, 60), np.int64)
    label[:, :30] = 2
    img, lab, box = ds.letterbox(image, label, 32)
    assert img.shape == (32, 32, 3) and lab.shape == (32, 32)
    assert box == (8, 24, 0, 32)  # 16 rows of scan, centred
    assert (img[:8] == 255).all() and (lab[:8] == 0).all()  # white padding, background label
    assert set(np.unique(lab[8:24])) == {0, 2} and (lab[8:24, :16] == 2).all()


def test_label_lookup_matches_names_across_id_schemes(tmp_path):
    writer = CocoWriter(tmp_path / "other", [{"id": 7, "name": "wrench"}, {"id": 9, "name": "Knife"}])
    lab = np.zeros((4, 4), np.uint8)
    lab[0, 0], lab[1, 1] = 7, 9
    writer.add(np.zeros((4, 4, 3), np.uint8), lab)
    writer.close()
    lut = ds.label_lookup(CocoDataset(tmp_path / "other"), ["Hammer", "Wrench"])
    assert lut[7] == 2 and lut[9] == 0 and lut[0] == 0  # matched by name; unknown → background


def test_resolve_categories(sets):
    test = CocoDataset(sets["test"])
    assert ds.resolve_categories(test, None) == ["Hammer", "Powerbank", "Wrench"]
    assert ds.resolve_categories(test, ["wrench", "hammer"]) == ["Wrench", "Hammer"]
    with pytest.raises(UserError, match="'Gun' is not a category of the test set"):
        ds.resolve_categories(test, ["Gun"])


def test_config_validation(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**TINY, "resolution": 40}))
    with pytest.raises(ConfigError, match="resolution: must be a multiple of 32"):
        load_config(path, ds.DownstreamConfig)
    path.write_text(yaml.safe_dump({**TINY, "ratios": [0, -1]}))
    with pytest.raises(ConfigError, match="ratios"):
        load_config(path, ds.DownstreamConfig)
    path.write_text(yaml.safe_dump({**TINY, "models": [{"name": "unet"}]}))
    with pytest.raises(ConfigError, match="models"):
        load_config(path, ds.DownstreamConfig)
    for preset in ("cpu", "paper"):
        cfg = load_config(Path(__file__).parents[1] / f"configs/eval/downstream-{preset}.yaml", ds.DownstreamConfig)
        assert cfg.ratio_names == ["1:0", "1:1", "1:2", "1:5", "1:10"]



def test_window_presets_cut_the_full_protocol_to_one_model():
    root = Path(__file__).parents[1] / "configs/eval"
    full = load_config(root / "downstream-windows-cpu.yaml", ds.DownstreamConfig)
    assert full.ratio_names == ["1:0", "1:1", "1:5", "1:10"]
    for name, model in (("sdanet", "sdanet"), ("deeplab", "deeplabv3")):
        cut = load_config(root / f"downstream-windows-{name}-cpu.yaml", ds.DownstreamConfig)
        assert [m.name for m in cut.models] == [model]
        assert cut.models[0] == next(m for m in full.models if m.name == model)  # the same network as the full sweep
        assert dataclasses.replace(cut, models=full.models) == full

def test_plan_runs_needs_enough_synthetic_scans():
    cfg = ds.DownstreamConfig(**{**TINY, "ratios": [0, 1, 5], "num_real": 2, "models": [ds.ModelConfig("sdanet")]})
    assert ds.plan_runs(cfg, 4, 10, Path("s")) == (2, {"1:0": 0, "1:1": 2, "1:5": 10})
    with pytest.raises(UserError, match="ratio 1:5 with R = 2 needs 10 synthetic scans"):
        ds.plan_runs(cfg, 4, 9, Path("s"))
    held_out = ds.DownstreamConfig(**{**TINY, "ratios": [0, 1], "num_real": None, "validation": 1,
                                      "models": [ds.ModelConfig("sdanet")]})
    assert ds.plan_runs(held_out, 4, 10, Path("s"))[0] == 3  # R = the real scans not held out
    with pytest.raises(UserError, match="2 training \\+ 3 validation real scans wanted, --real has 4"):
        ds.plan_runs(dataclasses.replace(held_out, num_real=2, validation=3), 4, 10, Path("s"))


def test_backbone_weights_round_trip(tmp_path):
    src = ResNet(18, width=8)
    torch.save(src.state_dict(), tmp_path / "w.pt")
    dst = ResNet(18, width=8)
    load_backbone_weights(dst, tmp_path / "w.pt")
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))
    with pytest.raises(UserError, match="does not fit"):
        load_backbone_weights(ResNet(18, width=16), tmp_path / "w.pt")
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    with pytest.raises(UserError, match="not a readable torch file"):
        load_backbone_weights(dst, tmp_path / "bad.pt")


def test_downstream_end_to_end(sets, tmp_path, monkeypatch):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "report"
    args = ["evaluate", "downstream", "--config", str(cfg), "--real", str(sets["real"]), "--synthetic",
            str(sets["synthetic"]), "--test", str(sets["test"]), "--outdir", str(out), "--device", "cpu"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'downstream.md'}" in result.output
    data = json.loads((out / "downstream.json").read_text())
    assert len(data["runs"]) == 4  # 2 models × 2 ratios × 1 seed
    assert data["data"]["classes"] == ["background", "Hammer", "Powerbank", "Wrench"]
    for model in data["summary"].values():
        assert set(model) == {"1:0", "1:1"} and model["1:1"]["synthetic"] == 3
        assert 0.0 <= model["1:0"]["wiou"][0] <= 1.0
    md = (out / "downstream.md").read_text()
    assert "| R:A | real | synthetic | mIoU % |" in md and "![downstream.png](downstream.png)" in md
    for png in ("downstream.png", "predictions.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    # a second call with the same config and data reuses the finished runs (resume) and reports the same
    monkeypatch.setattr(ds, "train_segmenter", lambda *a, **k: pytest.fail("finished run trained again"))
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert json.loads((out / "downstream.json").read_text())["summary"] == data["summary"]
    # the same folder with other content is not the same data: its runs are trained afresh
    ann = sets["synthetic"] / "annotations.json"
    original = ann.read_text()
    doc = json.loads(original)
    doc["annotations"] = doc["annotations"][:-1]
    retrained = []
    monkeypatch.setattr(ds, "train_segmenter",
                        lambda *a, **k: retrained.append(a[2]) or ds.Training(0.0, 1, 1, float("nan"), []))
    try:
        ann.write_text(json.dumps(doc))
        third = CliRunner().invoke(cli, args)
    finally:
        ann.write_text(original)  # the fixture is shared by the module's other tests
    assert third.exit_code == 0, third.output
    assert len(retrained) == 4


def test_a_widened_sweep_trains_only_its_new_runs_and_matches_a_fresh_one(sets, tmp_path, monkeypatch):
    one_model = {**TINY, "models": TINY["models"][1:], "num_real": 2}
    args = ["evaluate", "downstream", "--real", str(sets["real"]), "--synthetic", str(sets["synthetic"]),
            "--test", str(sets["test"]), "--device", "cpu"]

    def sweep(name: str, ok: bool = True, **change) -> dict | None:
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump({**one_model, **change}))
        result = CliRunner().invoke(cli, [*args, "--config", str(cfg), "--outdir", str(tmp_path / name)])
        assert (result.exit_code == 0) == ok, result.output
        return json.loads((tmp_path / name / "downstream.json").read_text()) if ok else None

    fresh = sweep("fresh", ratios=[0, 1, 2], seeds=[0, 1])
    sweep("widened", ratios=[1], seeds=[0])
    trained = []
    real_train = ds.train_segmenter

    def interrupted(*a, **k):  # the widened sweep is stopped in its second new run
        if trained:
            raise KeyboardInterrupt
        trained.append(a[5])
        return real_train(*a, **k)

    monkeypatch.setattr(ds, "train_segmenter", interrupted)
    sweep("widened", ok=False, ratios=[0, 1, 2], seeds=[0, 1])
    log = json.loads((tmp_path / "widened" / "downstream-runs.json").read_text())
    assert {(r["ratio"], r["seed"]) for r in log["runs"]} == {("1:0", 0), ("1:1", 0)}  # the old run not reached yet kept
    trained.clear()
    monkeypatch.setattr(ds, "train_segmenter", lambda *a, **k: trained.append(a[5]) or real_train(*a, **k))
    widened = sweep("widened", ratios=[0, 1, 2], seeds=[0, 1])
    assert sorted(trained) == sorted(["sdanet 1:0 seed 1", "sdanet 1:1 seed 1", "sdanet 1:2 seed 0",
                                      "sdanet 1:2 seed 1"])  # 1:0 seed 0 and 1:1 seed 0 came from the log

    def scores(doc: dict) -> list:
        return sorted((r["model"], r["ratio"], r["seed"], r["miou"], r["fg_iou"], r["class_iou"], r["final_loss"])
                      for r in doc["runs"])

    assert scores(widened) == scores(fresh)  # the same runs, to the bit
    assert len(sweep("widened", ratios=[1], seeds=[1])["runs"]) == 1  # narrowed: nothing trained, one run reported


def test_downstream_with_a_validation_split(sets, tmp_path):
    """validation: 1 holds one real scan out of training (R = 3 of 4) and records each run's steps and its score."""
    cfg = ds.DownstreamConfig(**{**TINY, "steps": 4, "eval_every": 2, "patience": 1, "validation": 1, "ratios": [0],
                                 "num_real": None, "models": [ds.ModelConfig(**TINY["models"][1])]})
    ds.run_downstream(cfg, sets["real"], sets["synthetic"], sets["test"], tmp_path, torch.device("cpu"))
    data = json.loads((tmp_path / "downstream.json").read_text())
    assert data["data"]["real"]["used"] == 3 and data["data"]["real"]["validation"] == 1
    (run,) = data["runs"]
    assert run["steps"] in (2, 4) and run["best_step"] in (2, 4) and 0.0 <= run["val_miou"] <= 1.0
    assert "early stopping on 1 held-out real scans" in (tmp_path / "downstream.md").read_text()


@pytest.mark.parametrize("breakage,message", [
    ("missing", "--real {real}: directory not found"),
    ("not_ours", "--real {real}: not a data set in the toolkit's format"),
    ("malformed", "malformed JSON"),
])
def test_downstream_bad_inputs_are_one_line_errors(sets, tmp_path, breakage, message):
    real = tmp_path / "real"
    if breakage != "missing":
        real.mkdir()
    if breakage == "malformed":
        (real / "annotations.json").write_text("{")
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    result = CliRunner().invoke(cli, ["evaluate", "downstream", "--config", str(cfg), "--real", str(real),
                                      "--synthetic", str(sets["synthetic"]), "--test", str(sets["test"]),
                                      "--outdir", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert message.format(real=real) in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_sharded_synthesis_output_is_refused_with_the_merge_command(tmp_path):
    (tmp_path / "synth" / "shard-00000").mkdir(parents=True)
    (tmp_path / "synth" / "index.json").write_text("{}")
    with pytest.raises(UserError, match=r"baggan coco merge .*synth --out MERGED"):
        ds.open_dataset(tmp_path / "synth", "--synthetic")
    with pytest.raises(UserError, match=r"no annotations.json\)$"):
        ds.open_dataset(tmp_path / "synth" / "shard-00000", "--synthetic")
