"""Issue 20: the HFC codes keep what the hidden features hold, and a segmenter on them can learn its own example.

A tiny generator with two textures planted into every hidden layer (a rectangle and a disc, 8 % of the pixels):
after HFC training the two textures stay linearly separable in the codes, and the one-shot fit standardises the
codes before the segmenter (without it, MLP-1 fitted nothing of its own example at the paper's budget).
"""

import pytest
import torch
import torch.nn.functional as F
from toygen import ToyGenerator, iou, single_thread  # noqa: F401

from hfc.checkpoint import load_module
from hfc.config import HFCConfig, OneShotConfig, SamplingConfig, SwAVConfig
from hfc.oneshot import Annotation, HFCSegmenter, fit, load_classifier, save_classifier
from hfc.rng import seeded
from hfc.segmenters import ConvSegmenter, make_segmenter
from hfc.train import train_hfc


class PlantedGenerator(ToyGenerator):
    """The toy generator with texture 1 (a rectangle) and texture 2 (a disc) added to every hidden layer: a random
    unit channel direction per texture, at `amplitude` x the layer's feature std, over the area-resampled region."""

    def __init__(self, amplitude: float = 1.0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.amplitude = amplitude
        label = torch.zeros(32, 32, dtype=torch.long)
        label[4:10, 4:12] = 1
        yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
        label[(yy - 22) ** 2 + (xx - 21) ** 2 <= 12] = 2
        self.label = label
        self.directions = [F.normalize(torch.randn(2, layer.channels, generator=g), dim=1) for layer in self.feature_layers]

    def synthesize(self, ws, noise_mode="const", return_features=True):
        image, feats = super().synthesize(ws, noise_mode, True)
        regions = F.one_hot(self.label, 3).permute(2, 0, 1)[None, 1:].float()  # [1, 2, 32, 32]
        planted = []
        for h, d in zip(feats, self.directions):
            m = F.interpolate(regions, size=h.shape[-2:], mode="area")
            planted.append(h + self.amplitude * h.std() * torch.einsum("nkhw,kc->nchw", m, d))
        return image, (planted if return_features else [])


TINY = HFCConfig(dim=16, epochs=4, images_per_epoch=3, batch_size=2, checkpoint_every=4,
                 sampling=SamplingConfig(mode="pixels", num_patches=2, num_pixels=96),
                 swav=SwAVConfig(prototypes=24, temperature=0.1, epsilon=0.05))  # fmt: skip


@pytest.fixture(scope="module")
def planted():
    return PlantedGenerator()


@pytest.fixture(scope="module")
def trained(planted, tmp_path_factory):
    return train_hfc(planted, TINY, tmp_path_factory.mktemp("hfc"), progress=False)


@pytest.fixture(scope="module")
def example(planted):
    ws = planted.sample_ws(1, seed=5)
    with torch.no_grad():
        _, feats = planted.synthesize(ws)
    return Annotation(ws[0], planted.label), feats


def test_planted_textures_stay_linearly_separable_in_the_codes(planted, trained, example):
    """A linear classifier trained to convergence (L-BFGS) on the trained encoder's codes separates both textures."""
    _, feats = example
    with torch.no_grad():
        x = trained(feats, 32)[0].flatten(1).t()
    x = (x - x.mean(0)) / x.std(0)
    y = planted.label.flatten()
    with seeded(0):
        lin = torch.nn.Linear(x.shape[1], 3)
    opt = torch.optim.LBFGS(lin.parameters(), lr=1, max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(lin(x), y)
        loss.backward()
        return loss

    opt.step(closure)
    pred = lin(x).argmax(1).reshape(32, 32)
    assert min(iou(pred, planted.label, 1), iou(pred, planted.label, 2)) >= 0.95


def test_fit_standardises_the_codes_and_mlp1_learns_its_example(planted, trained, example, tmp_path):
    """fit calibrates the segmenter on the example's codes (zero mean, unit variance per channel); MLP-1 then
    learns both textures of its own example, where the same fit on the raw unit-norm codes stays at zero."""
    ann, feats = example
    scores = {}
    for standardize in (False, True):
        with seeded(0):
            model = HFCSegmenter(trained, make_segmenter("mlp1", 16, 3, standardize=standardize))
        fit(model, planted, [ann], OneShotConfig(segmenter="mlp1", epochs=200))
        pred = model.predict(feats, 32)[0][0]
        scores[standardize] = min(iou(pred, planted.label, 1), iou(pred, planted.label, 2))
    with torch.no_grad():
        z = model.segmenter.standardized(trained(feats, 32))
    var = z.var((0, 2, 3), unbiased=False)  # 1 / (1 + STD_FLOOR * mean var / var): a little below 1
    assert z.mean((0, 2, 3)).abs().max() < 1e-4 and bool(((var > 0.9) & (var <= 1 + 1e-4)).all())
    assert scores[False] < 0.1 and scores[True] >= scores[False] + 0.3, scores
    save_classifier(tmp_path / "seg.pt", model)  # the calibration travels with the segmenter file
    loaded = load_classifier(tmp_path / "seg.pt", trained)
    assert torch.equal(loaded.predict(feats, 32)[0], model.predict(feats, 32)[0])


def test_mlp1_fits_its_own_example_when_trained_longer(planted, trained, example):
    """The codes are separable (above), so the standardised linear head gets there: 1000 Adam steps (~1 s)."""
    ann, feats = example
    with seeded(0):
        model = HFCSegmenter(trained, make_segmenter("mlp1", 16, 3, standardize=True))
    fit(model, planted, [ann], OneShotConfig(segmenter="mlp1", epochs=1000))
    pred = model.predict(feats, 32)[0][0]
    assert iou(pred, planted.label, 1) >= 0.8 and iou(pred, planted.label, 2) >= 0.8


def test_lbfgs_fits_the_linear_head_to_convergence_in_fewer_steps(planted, trained, example):
    """optimizer lbfgs: the convex linear head reaches its example in at most 100 loss evaluations, where 100 Adam
    steps do not get as far; the history holds one loss per evaluation, decreasing overall."""
    ann, feats = example
    ious, histories = {}, {}
    for opt in ("adam", "lbfgs"):
        with seeded(0):
            model = HFCSegmenter(trained, make_segmenter("mlp1", 16, 3, standardize=True))
        histories[opt] = fit(model, planted, [ann], OneShotConfig(segmenter="mlp1", epochs=100, optimizer=opt))
        pred = model.predict(feats, 32)[0][0]
        ious[opt] = min(iou(pred, planted.label, 1), iou(pred, planted.label, 2))
    assert ious["lbfgs"] >= 0.9 and ious["lbfgs"] >= ious["adam"], ious
    assert 1 < len(histories["lbfgs"]) <= 100 and histories["lbfgs"][-1] < 0.5 * histories["lbfgs"][0]
    assert len(histories["adam"]) == 100
    with pytest.raises(ValueError, match="optimizer: adam or lbfgs, got 'sgd'"):
        OneShotConfig(optimizer="sgd")


def test_segmenter_files_without_standardisation_still_load(tmp_path, trained):
    """A segmenter written before issue 20 (no `standardize` in its spec, no buffers) loads as unstandardised."""
    from hfc.checkpoint import module_record, save_atomic

    with seeded(0):
        old = ConvSegmenter(16, 3, layers=1, kernel=1)
    record = module_record(old)
    record["spec"].pop("standardize")
    save_atomic(record, tmp_path / "old.pt")
    seg = load_module(tmp_path / "old.pt")
    assert not seg.standardize and torch.equal(seg.net[0].weight, old.net[0].weight)
    with pytest.raises(AssertionError, match="without standardize"):
        seg.calibrate([torch.zeros(1, 16, 4, 4)])
