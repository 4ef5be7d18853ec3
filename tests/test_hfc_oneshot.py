"""One-shot segmenters, fit, Annotator, save/load; every baseline and clusterer end to end on the toy generator."""

import math

import pytest
import torch
import torch.nn.functional as F
from toygen import ToyGenerator, iou, single_thread, toy_label  # noqa: F401

from hfc.baselines import DatasetGAN, RepurposeFCN, RepurposeMLP
from hfc.clusterers import KMeansEncoder, NTXentLoss, fit_kmeans_encoder, kmeans_centroids
from hfc.config import HFCConfig, KMeansConfig, OneShotConfig
from hfc.errors import HFCError
from hfc.features import sample_features_at
from hfc.generator import layer_channels
from hfc.methods import fit_segmenter
from hfc.oneshot import Annotation, Annotator, HFCSegmenter, class_weights, fit, load_classifier, save_classifier
from hfc.rng import seeded
from hfc.segmenters import SHAPES, make_segmenter
from hfc.swav import ProjectionHead


class CountingGen(ToyGenerator):
    """The toy generator, counting synthesis passes."""

    calls = 0

    def synthesize(self, ws, noise_mode="const", return_features=True):
        self.calls += 1
        return super().synthesize(ws, noise_mode, return_features)


@pytest.fixture(scope="module")
def gen():
    return CountingGen()


@pytest.fixture(scope="module")
def encoder(gen):
    with seeded(0):
        return ProjectionHead(layer_channels(gen), 32)


@pytest.fixture(scope="module")
def sample(gen):
    ws = gen.sample_ws(1, seed=5)
    with torch.no_grad():
        image, feats = gen.synthesize(ws)
    return Annotation(ws[0], toy_label(image[0])), feats


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_segmenter_shapes(name):
    seg = make_segmenter(name, 12, 4, hidden=8)
    convs = [m for m in seg.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == SHAPES[name][0] and all(c.kernel_size[0] == SHAPES[name][1] for c in convs)
    z = torch.randn(2, 12, 9, 9)
    assert seg(z).shape == (2, 4, 9, 9) and torch.allclose(seg.predict_proba(z).sum(1), torch.ones(2, 9, 9))
    assert seg.name == name


@pytest.mark.parametrize("name", ["mlp1", "mlp3"])
def test_pixelwise_mlp_equals_forward(name):
    with seeded(0):
        seg = make_segmenter(name, 12, 4, hidden=8)
    z = torch.randn(2, 12, 5, 5)
    rows = z.permute(0, 2, 3, 1).reshape(-1, 12)
    ref = seg(z).permute(1, 0, 2, 3).reshape(4, -1)  # [K, N * 25]
    assert seg.per_pixel and torch.allclose(seg.pixelwise(rows), ref, atol=1e-6)
    assert not make_segmenter("fcn3", 12, 4).per_pixel


@pytest.mark.parametrize("name,tile_values",
                         [("mlp1", 1 << 20), ("mlp3", 1 << 20), ("mlp1", 32 * 100), ("fcn3", 1 << 20)])
def test_tiled_prediction_equals_whole_image(gen, encoder, name, tile_values, monkeypatch):
    """HFCSegmenter.predict's cache-sized blocks (MLPs on the CPU) give the generic path's labels and probabilities,
    for one block per image and for blocks of 100 pixels (uneven: 1024 = 10 x 100 + 24); FCNs take the generic path."""
    import hfc.oneshot

    with seeded(1):
        model = HFCSegmenter(encoder, make_segmenter(name, 32, 3, hidden=16)).eval()
    with torch.no_grad():
        _, feats = gen.synthesize(gen.sample_ws(2, seed=4))
        monkeypatch.setattr(hfc.oneshot, "TILE_VALUES", tile_values)
        labels, probs = model.predict(feats, 32)
        ref_labels, ref_probs = hfc.oneshot.PixelClassifier.predict(model, feats, 32)
    assert torch.equal(labels, ref_labels) and (probs - ref_probs).abs().max() < 1e-5
    assert torch.equal(labels, probs.argmax(1))


def test_fcn3_overfits_one_sample(gen, encoder, sample):
    ann, feats = sample
    model = fit_segmenter(gen, encoder, [ann], OneShotConfig(segmenter="fcn3", hidden=32, epochs=100))
    labels, probs = model.predict(feats, 32)
    assert iou(labels[0], ann.label) >= 0.95
    assert torch.allclose(probs.sum(1), torch.ones(1, 32, 32), atol=1e-5)


def test_few_shot_fit_uses_every_sample(gen, encoder, sample):
    ann, _ = sample
    ws = gen.sample_ws(1, seed=9)
    with torch.no_grad():
        image, _ = gen.synthesize(ws)
    second = Annotation(ws[0], toy_label(image[0]))
    with seeded(0):
        model = HFCSegmenter(encoder, make_segmenter("mlp3", 32, 2, hidden=16))
    history = fit(model, gen, [ann, second], OneShotConfig(epochs=30))
    assert len(history) == 30 and history[-1] < history[0]


def test_class_weights_follow_the_label_shares():
    labels = [torch.tensor([[0, 0, 0, 1], [0, 0, 2, 255]])]  # background 5 of 7 labelled pixels; class 3 absent
    assert torch.allclose(class_weights(labels, 4, 1.0), torch.tensor([1.0, 5.0, 5.0, 1.0]))
    assert torch.allclose(class_weights(labels, 4, 0.5), torch.tensor([1.0, 5 ** 0.5, 5 ** 0.5, 1.0]))
    assert torch.equal(class_weights([torch.full((2, 2), 255)], 3, 1.0), torch.ones(3))


def test_class_balance_widens_a_rare_class(gen, encoder, sample):
    ann, feats = sample
    label = ann.label.clone()
    label[:, 12:] = 0
    label[12:, :] = 0  # the toy object in one corner only: 7 % of the pixels
    marked = []
    for power in (0.0, 0.5, 1.0):
        model = fit_segmenter(gen, encoder, [Annotation(ann.ws, label)],
                              OneShotConfig(segmenter="mlp1", epochs=30, class_balance=power))
        marked.append(int(model.predict(feats, 32)[0].sum()))
    assert marked[0] < marked[1] < marked[2]  # the plain loss under-fits the rare class; weighting it widens it
    with pytest.raises(ValueError, match="class_balance"):
        OneShotConfig(class_balance=-1.0)


def test_annotated_samples_are_checked(gen, encoder, sample):
    ann, _ = sample
    with pytest.raises(HFCError, match=r"annotated sample 0: label map is \(16, 16\)"):
        fit_segmenter(gen, encoder, [Annotation(ann.ws, ann.label[:16, :16])], num_classes=2)
    bad = ann.label.clone()
    bad[0, 0] = 7
    with pytest.raises(HFCError, match="annotated sample 0: label 7 outside 0..1"):
        fit_segmenter(gen, encoder, [Annotation(ann.ws, bad)], num_classes=2)
    with seeded(0):
        other = ProjectionHead([16, 16], 32)  # an encoder of another generator
    with pytest.raises(HFCError, match=r"built for hidden layers with channels \[16, 16\]"):
        fit_segmenter(gen, other, [ann], num_classes=2)
    with pytest.raises(HFCError, match="this generator has"):
        Annotator(gen, other, make_segmenter("mlp1", 32, 2))


def test_annotator_one_pass_and_save_load(gen, encoder, sample, tmp_path):
    ann, _ = sample
    model = fit_segmenter(gen, encoder, [ann], OneShotConfig(segmenter="mlp1", epochs=5))
    annotate = Annotator(gen, encoder, model.segmenter)
    ws = gen.sample_ws(3, seed=11)
    before = gen.calls
    with torch.inference_mode():
        out = annotate(ws)
    assert gen.calls == before + 1  # ONE synthesis pass for images, labels and probabilities
    assert out.images.shape == (3, 3, 32, 32) and out.labels.shape == (3, 32, 32) and out.probs.shape == (3, 2, 32, 32)
    assert out.labels.dtype == torch.int64 and torch.equal(out.labels, out.probs.argmax(1))
    _, feats = gen.synthesize(ws, noise_mode="const", return_features=True)
    with torch.enable_grad():  # the batched, differentiable path: same probabilities as image-by-image predict
        batched = model(feats, 32).softmax(1)
    assert (batched - out.probs).abs().max() < 1e-5
    save_classifier(tmp_path / "seg.pt", model, meta={"classes": ["bg", "bright"]})
    with pytest.raises(HFCError, match="give the HFC encoder"):
        load_classifier(tmp_path / "seg.pt")
    loaded = load_classifier(tmp_path / "seg.pt", encoder)
    assert loaded.segmenter.meta == {"classes": ["bg", "bright"]}
    assert torch.equal(Annotator(gen, encoder, loaded)(ws).probs, out.probs)


BASELINES = {
    "datasetgan": lambda ch: DatasetGAN(ch, 2, members=3, hidden=(16, 8)),
    "repurpose_mlp": lambda ch: RepurposeMLP(ch, 2, hidden=(16, 8)),
    "repurpose_fcn": lambda ch: RepurposeFCN(ch, 2, widths=(16, 8, 8, 8)),
}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_fit_and_predict(gen, sample, name, tmp_path):
    ann, feats = sample
    with seeded(0):
        model = BASELINES[name](layer_channels(gen))
    history = fit(model, gen, [ann], OneShotConfig(epochs=100, lr=0.01))
    assert history[-1] < 0.5 * history[0] and iou(model.predict(feats, 32)[0][0], ann.label) > 0.8
    out = Annotator(gen, None, model)(gen.sample_ws(2, seed=3))
    assert out.labels.shape == (2, 32, 32) and torch.allclose(out.probs.sum(1), torch.ones(2, 32, 32), atol=1e-5)
    save_classifier(tmp_path / "b.pt", model)
    loaded = load_classifier(tmp_path / "b.pt")
    assert type(loaded) is type(model) and torch.equal(loaded.predict(feats, 32)[1], model.predict(feats, 32)[1])


def test_datasetgan_vote_and_uncertainty(gen, sample):
    _, feats = sample
    with seeded(1):
        model = DatasetGAN(layer_channels(gen), 3, members=5, hidden=(8, 4)).eval()
    labels, probs = model.predict(feats, 32)
    member_labels = model.member_logits(model.prepare(feats, 32)).argmax(2)  # [1, 5, 32, 32]
    counts = F.one_hot(member_labels, 3).sum(1)  # [1, 32, 32, 3]
    assert torch.equal(labels, counts.argmax(-1))  # majority vote (ties: lowest class)
    js = model.uncertainty(feats, 32)
    assert js.shape == (1, 32, 32) and (js > -1e-6).all() and (js < math.log(5) + 1e-6).all()
    assert torch.allclose(model(feats, 32).softmax(1), probs, atol=1e-5)  # classify = log of the mean


def test_kmeans_encoder_is_a_soft_assignment(gen, sample):
    _, feats = sample
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    pts = torch.cat([c + 0.1 * torch.randn(50, 2, generator=g) for c in centers])
    found, inertia = kmeans_centroids(pts, 3, 20, g)
    assert torch.cdist(found, centers).min(0).values.max() < 0.1 and inertia < 0.05
    cfg = HFCConfig(dim=6, kmeans=KMeansConfig(images=2, pixels_per_image=50, iters=10, temperature=0.5))
    enc, stats = fit_kmeans_encoder(gen, cfg, torch.Generator().manual_seed(0))
    assert stats["pixels"] == 100
    coords = torch.randint(0, 32, (1, 40, 2), generator=g)
    h = sample_features_at(feats, coords, 32)[0]
    mu = enc.proj.weight * (0.5 * stats["inertia"]) / 2  # recover the centroids from the Linear layer
    direct = (-torch.cdist(h, mu) ** 2 / (0.5 * stats["inertia"])).softmax(-1)
    assert (enc.encode_at(feats, coords, 32)[0] - direct).abs().max() < 1e-4


def test_ntxent_prefers_aligned_views():
    g = torch.Generator().manual_seed(0)
    z = F.normalize(torch.randn(2, 64, 16, generator=g), dim=-1)
    loss = NTXentLoss(temperature=0.1, pixels=32)
    aligned, shuffled = loss(z, z), loss(z, z[:, torch.randperm(64, generator=g)])
    assert aligned < 0.5 * shuffled


@pytest.mark.parametrize("method", ["kmeans", "simclr"])
def test_clusterer_encoders_drive_the_segmenters(gen, sample, method, tmp_path):
    from hfc.config import SamplingConfig, SimCLRConfig
    from hfc.train import train_hfc

    ann, _ = sample
    cfg = HFCConfig(method=method, dim=16, epochs=2, images_per_epoch=2, batch_size=2,
                    sampling=SamplingConfig(mode="patches", num_patches=2, patch_size=8),
                    simclr=SimCLRConfig(pixels=32), kmeans=KMeansConfig(images=2, pixels_per_image=40, iters=5))  # fmt: skip
    enc = train_hfc(gen, cfg, tmp_path, progress=False)
    model = fit_segmenter(gen, enc, [ann], OneShotConfig(segmenter="fcn3", hidden=16, epochs=20))
    out = Annotator(gen, enc, model.segmenter)(gen.sample_ws(2, seed=1))
    assert out.probs.shape == (2, 2, 32, 32) and isinstance(enc, KMeansEncoder if method == "kmeans" else ProjectionHead)


def test_fit_views_move_one_fine_block_per_view(gen):
    from hfc.augment import fit_views, style_blocks

    ws = gen.sample_ws(1, seed=5)
    views = fit_views(gen, ws, 6, tau_p=0.5, min_resolution=16, seed=3)
    assert views.shape == (6, gen.num_ws, gen.w_dim)
    assert torch.equal(views, fit_views(gen, ws, 6, tau_p=0.5, min_resolution=16, seed=3))  # seeded
    fine = {b.index: b.ws for b in style_blocks(gen) if b.resolution >= 16}
    for v in views:
        moved = tuple(i for i in range(gen.num_ws) if not torch.equal(v[i], ws[0, i]))
        assert moved in fine.values()  # the entries of exactly one block of >= 16 px; 4x4 and 8x8 untouched
    assert fit_views(gen, ws, 0, 0.5, 16, 3).shape == (0, gen.num_ws, gen.w_dim)
    with pytest.raises(HFCError, match="views_min_resolution: 64 leaves no style block"):
        fit_views(gen, ws, 2, 0.5, 64, 3)


def test_fit_with_views_renders_and_fits_each_view(gen, encoder, sample):
    ann, feats = sample
    with seeded(0):
        model = HFCSegmenter(encoder, make_segmenter("mlp1", 32, 2))
    before = gen.calls
    fit(model, gen, [ann], OneShotConfig(epochs=5, views=3))
    assert gen.calls - before == 1 + 3  # the sample, then its 3 views, each rendered once
    with seeded(0):
        plain = HFCSegmenter(encoder, make_segmenter("mlp1", 32, 2))
    fit(plain, gen, [ann], OneShotConfig(epochs=5))
    assert not torch.equal(model.predict(feats, 32)[1], plain.predict(feats, 32)[1])  # the views entered the fit
    with pytest.raises(HFCError, match="annotated sample 0: views need the generator that rendered its features"):
        fit(model, gen, [Annotation(ann.ws, ann.label, tuple(feats))], OneShotConfig(epochs=1, views=2))
    given = Annotation(ann.ws, ann.label, tuple(feats), gen)  # features given, views rendered by its generator
    before = gen.calls
    fit(model, gen, [given], OneShotConfig(epochs=1, views=2))
    assert gen.calls - before == 2
