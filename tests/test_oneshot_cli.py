"""`baggan oneshot fit` (seed, ws, image sources; few-shot; baselines) and `baggan annotate`, end to end on a tiny
randomly initialised generator and HFC encoder; bad inputs give one-line errors with exit code 2."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from toygen import single_thread  # noqa: F401 - tiny tensors: one thread is faster on a busy CPU

from baggan.cli import cli
from baggan.io import write_image_atomic
from baggan.oneshot import rgb
from baggan.stylegan2 import NetworkConfig, StyleGANFeatureGenerator, build_discriminator, build_generator, save_network
from baggan.stylegan2.latents import ws_from_seed
from baggan.stylegan2.projector import to_uint8
from baggan.synth.build import load_annotator
from hfc.checkpoint import load_module, save_module
from hfc.generator import layer_channels
from hfc.oneshot import HFCSegmenter, load_classifier
from hfc.rng import seeded
from hfc.swav import ProjectionHead

TINY16 = NetworkConfig(cfg="custom", resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256,
                       channel_max=32, num_fp16_res=0, d_architecture="resnet", mbstd_group_size=2)
HAMMER, KNIFE = 3, 11  # PIDRay category ids


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """Network (G_ema + D), a fresh HFC encoder, two generated scans with masks (bright = Hammer, dark = Knife)."""
    d = tmp_path_factory.mktemp("oneshot")
    with seeded(0):
        G, D = build_generator(TINY16).eval(), build_discriminator(TINY16).eval()
        encoder = ProjectionHead(layer_channels(StyleGANFeatureGenerator(G)), 16)
    save_network(d / "net.pt", {"G_ema": G, "D": D}, TINY16)
    save_network(d / "g_only.pt", {"G_ema": G}, TINY16)
    save_module(d / "hfc.pt", encoder, {"method": "swav"})
    for seed in (3, 4):
        ws = ws_from_seed(G, [seed], 1.0)
        with torch.no_grad():
            scan = rgb(to_uint8(G.synthesis(ws, noise_mode="const"))[0])
        grey = scan.mean(2)
        mask = np.where(grey > np.percentile(grey, 70), HAMMER, np.where(grey < np.percentile(grey, 20), KNIFE, 0))
        write_image_atomic(d / f"scan{seed}.png", scan)
        write_image_atomic(d / f"mask{seed}.png", mask.astype(np.uint8))
        np.save(d / f"ws{seed}.npy", ws.numpy())
    return d


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def fit(kit, *args):
    return run("oneshot", "fit", "--network", kit / "net.pt", "--device", "cpu", *args)


def test_fit_from_a_seed_writes_what_synthesize_reads(kit):
    out = kit / "seed.pt"
    r = fit(kit, "--hfc", kit / "hfc.pt", "--seed", 3, "--mask", kit / "mask3.png", "--hidden", 16, "--epochs", 60,
            "--out", out)
    assert r.exit_code == 0, r.output
    assert f"segmenter: {out}" in r.output and (kit / "seed.png").is_file()
    model = load_classifier(out, load_module(kit / "hfc.pt"))
    meta = model.segmenter.meta
    assert isinstance(model, HFCSegmenter) and model.segmenter.name == "fcn3" and model.num_classes == 3
    assert meta["label_set"] == "pidray" and meta["class_to_category"] == [0, HAMMER, KNIFE]
    assert meta["categories"] == ["Hammer", "Knife"] and meta["samples"] == ["seed 3"] and meta["method"] == "swav"
    assert len(meta["generator_sha256"]) == 64 and meta["training_iou"][0] >= 0.9
    wiring = load_annotator(kit / "net.pt", kit / "hfc.pt", out, torch.device("cpu"))  # as `baggan synthesize` does
    assert wiring.class_to_category == [0, HAMMER, KNIFE] and wiring.label_set.name == "pidray"


def test_fit_from_a_real_scan_projects_it(kit):
    out = kit / "image.pt"
    r = fit(kit, "--hfc", kit / "hfc.pt", "--image", kit / "scan4.png", "--mask", kit / "mask4.png", "--steps", 30,
            "--use-d-features", "--segmenter", "mlp1", "--epochs", 5, "--out", out)
    assert r.exit_code == 0, r.output
    assert "reconstruction: PSNR" in r.output and (kit / "image.png").is_file()
    meta = load_classifier(out, load_module(kit / "hfc.pt")).segmenter.meta
    assert meta["samples"] == ["image scan4.png"] and len(meta["projection_psnr"]) == len(meta["projection_ssim"]) == 1
    assert meta["projection_psnr"][0] > 10 and 0 < meta["projection_ssim"][0] <= 1


def test_few_shot_pairs_masks_in_command_line_order(kit):
    out = kit / "few.pt"
    r = fit(kit, "--hfc", kit / "hfc.pt", "--ws", f"{kit / 'ws4.npy'}:0", "--mask", kit / "mask4.png",
            "--seed", 3, "--mask", kit / "mask3.png", "--segmenter", "mlp3", "--hidden", 8, "--epochs", 5, "--out", out)
    assert r.exit_code == 0, r.output
    meta = load_classifier(out, load_module(kit / "hfc.pt")).segmenter.meta
    assert meta["samples"] == ["ws ws4.npy:0", "seed 3"]
    assert meta["masks"] == [str(kit / "mask4.png"), str(kit / "mask3.png")] and len(meta["training_iou"]) == 2


@pytest.mark.parametrize("method", ["datasetgan", "repurpose-fcn"])
def test_raw_feature_baselines_need_no_encoder(kit, method):
    out = kit / f"{method}.pt"
    r = fit(kit, "--method", method, "--seed", 3, "--mask", kit / "mask3.png", "--epochs", 3, "--out", out)
    assert r.exit_code == 0, r.output
    model = load_classifier(out)
    assert model.kind == method.replace("-", "_") and model.meta["method"] == method and model.meta["hfc"] == ""


def test_the_image_only_control_fits_without_an_encoder(kit):
    out = kit / "image-mlp.pt"
    r = fit(kit, "--method", "image-mlp", "--with-image", "--seed", 3, "--mask", kit / "mask3.png", "--epochs", 3,
            "--out", out)
    assert r.exit_code == 0, r.output
    model = load_classifier(out)
    assert model.kind == "image_mlp" and model.image_channels > 0 and model.meta["method"] == "image-mlp"


def test_with_image_fits_codes_and_colours_and_annotates(kit):
    out = kit / "with-image.pt"
    r = fit(kit, "--hfc", kit / "hfc.pt", "--seed", 3, "--mask", kit / "mask3.png", "--hidden", 16, "--epochs", 60,
            "--with-image", "--out", out)
    assert r.exit_code == 0, r.output
    model = load_classifier(out, load_module(kit / "hfc.pt"))
    assert model.image_channels == 3 and model.segmenter.in_dim == 16 + 3 and model.segmenter.standardize
    assert model.segmenter.meta["training_iou"][0] >= 0.9  # masks of bright / dark pixels: in the colours
    r = run("annotate", "--network", kit / "net.pt", "--hfc", kit / "hfc.pt", "--segmenter", out, "--n", 2,
            "--outdir", kit / "annotated-with-image", "--device", "cpu")
    assert r.exit_code == 0, r.output  # the annotator offers the image itself


def test_views_fit_projected_and_generated_samples(kit):
    losses = []
    for views in (0, 2):  # a projected scan's views render with its noise maps, a seed's with the generator's own
        out = kit / f"views{views}.pt"
        r = fit(kit, "--hfc", kit / "hfc.pt", "--image", kit / "scan4.png", "--mask", kit / "mask4.png", "--steps", 10,
                "--seed", 3, "--mask", kit / "mask3.png", "--segmenter", "mlp1", "--epochs", 5, "--views", views,
                "--out", out)
        assert r.exit_code == 0, r.output
        losses.append(load_classifier(out, load_module(kit / "hfc.pt")).segmenter.meta["final_loss"])
    assert losses[0] != losses[1]


def test_annotate_writes_the_grid(kit):
    seg = kit / "ann-seg.pt"
    assert fit(kit, "--hfc", kit / "hfc.pt", "--seed", 3, "--mask", kit / "mask3.png", "--segmenter", "mlp1",
               "--epochs", 3, "--out", seg).exit_code == 0
    outdir = kit / "annotated"
    r = run("annotate", "--network", kit / "net.pt", "--hfc", kit / "hfc.pt", "--segmenter", seg, "--n", 5,
            "--outdir", outdir, "--seed", 10, "--psi", 0.7, "--batch", 2, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert str(outdir / "grid.png") in r.output and (outdir / "grid.png").stat().st_size > 0
    import cv2

    for s in range(10, 15):
        assert cv2.imread(str(outdir / f"seed{s:04d}.png")).shape == (16, 16, 3)
        assert set(np.unique(cv2.imread(str(outdir / f"seed{s:04d}_mask.png"), 0))) <= {0, HAMMER, KNIFE}


def test_resize_takes_a_scan_of_another_size_with_its_mask(kit):
    write_image_atomic(kit / "big.png", np.full((20, 24, 3), 90, np.uint8))
    mask = np.zeros((20, 24), np.uint8)
    mask[5:15, 6:18] = HAMMER
    write_image_atomic(kit / "big_mask.png", mask)
    r = fit(kit, "--hfc", kit / "hfc.pt", "--image", kit / "big.png", "--mask", kit / "big_mask.png", "--resize",
            "--steps", 2, "--segmenter", "mlp1", "--epochs", 1, "--out", kit / "big.pt")
    assert r.exit_code == 0, r.output
    assert "big.png: resized 24x20 → 16x16 (aspect ratio changed); its mask is resized too" in r.stderr
    assert load_classifier(kit / "big.pt", load_module(kit / "hfc.pt")).segmenter.meta["class_to_category"] == [0, HAMMER]


@pytest.fixture(scope="module")
def bad_masks(kit):
    """Masks that must be refused: wrong size, unknown ids, colour-coded."""
    write_image_atomic(kit / "small.png", np.zeros((8, 8), np.uint8))
    unknown = np.zeros((16, 16), np.uint8)
    unknown[2, 2] = 40
    write_image_atomic(kit / "unknown.png", unknown)
    colour = np.zeros((16, 16, 3), np.uint8)
    colour[..., 0] = 200
    write_image_atomic(kit / "colour.png", colour)
    write_image_atomic(kit / "scan_big.png", np.zeros((20, 24, 3), np.uint8))
    return kit


@pytest.mark.parametrize("args, message", [
    (["--seed", 3, "--mask", "small.png"], "small.png: mask is 8x8, the generator makes 16x16 scans"),
    (["--seed", 3, "--mask", "unknown.png"], "unknown.png: ids [40] are not categories of label set pidray"),
    (["--seed", 3, "--mask", "colour.png"], "colour.png: colour RGB(200, 0, 0) at pixel (0, 0) is no category"),
    (["--seed", 3, "--mask", "nope.png"], "nope.png: label map not found"),
    (["--seed", 3, "--seed", 4, "--mask", "mask3.png"], "give one --mask per sample: 2 --seed/--ws/--image but 1 --mask"),
    (["--image", "scan_big.png", "--mask", "mask3.png"], "scan_big.png: scan is 24x20, the generator makes 16x16 scans; refused"),
    (["--image", "nope.png", "--mask", "mask3.png"], "nope.png: image file not found"),
    (["--ws", "ws3.npy:5", "--mask", "mask3.png"], "ws3.npy: row 5 is out of range"),
    (["--ws", "mask3.png", "--mask", "mask3.png"], "mask3.png: not a readable .npy/.pt ws file"),
])  # fmt: skip
def test_bad_sample_inputs_are_one_line_errors(bad_masks, args, message):
    kit = bad_masks
    args = [kit / a if isinstance(a, str) and a.endswith((".png", ".npy", ":5")) else a for a in args]
    r = fit(kit, "--hfc", kit / "hfc.pt", *args, "--epochs", 1, "--out", kit / "never.pt")
    assert r.exit_code == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.output
    assert not (kit / "never.pt").exists()


def test_bad_option_combinations_are_one_line_errors(kit):
    r = fit(kit, "--seed", 3, "--mask", kit / "mask3.png")
    assert r.exit_code == 2 and "--hfc is required for --method swav" in r.stderr
    r = fit(kit, "--hfc", kit / "hfc.pt", "--method", "kmeans", "--seed", 3, "--mask", kit / "mask3.png")
    assert r.exit_code == 2 and "trained with swav, but --method kmeans" in r.stderr
    r = run("oneshot", "fit", "--network", kit / "g_only.pt", "--hfc", kit / "hfc.pt", "--image", kit / "scan4.png",
            "--mask", kit / "mask4.png", "--use-d-features")
    assert r.exit_code == 2 and "holds no discriminator" in r.stderr
    r = fit(kit, "--method", "image-mlp", "--seed", 3, "--mask", kit / "mask3.png")
    assert r.exit_code == 2 and "image-mlp (the control) reads the generated image alone" in r.stderr
    r = run("annotate", "--network", kit / "net.pt", "--segmenter", kit / "nope.pt", "--outdir", kit / "x")
    assert r.exit_code == 2 and "nope.pt: file not found" in r.stderr and r.stderr.count("\n") == 1
