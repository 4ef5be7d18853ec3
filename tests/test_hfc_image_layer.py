"""The generated image as the last feature layer (hfc.generator.ImageLayer) and a segmenter that reads it beside
the codes (HFCSegmenter image_channels, OneShotConfig.image): fit, save/load, Annotator."""

import pytest
import torch
from toygen import ToyGenerator, iou, single_thread, toy_label  # noqa: F401

from hfc.config import OneShotConfig
from hfc.generator import IMAGE_LAYER, ImageLayer, layer_channels, offering_image
from hfc.methods import fit_segmenter
from hfc.oneshot import Annotation, Annotator, HFCSegmenter, load_classifier, save_classifier
from hfc.rng import seeded
from hfc.swav import ProjectionHead


@pytest.fixture(scope="module")
def gen():
    return ToyGenerator()


@pytest.fixture(scope="module")
def blind_encoder(gen):
    """An encoder whose codes are the same at every pixel: they hold nothing about the image."""
    with seeded(0):
        enc = ProjectionHead(layer_channels(gen), 16)
    with torch.no_grad():
        for name, p in enc.named_parameters():
            if "bias" not in name:
                p.zero_()
    return enc.eval()


@pytest.fixture(scope="module")
def samples(gen):
    ws = gen.sample_ws(2, seed=5)
    with torch.no_grad():
        images, _ = gen.synthesize(ws)
    return [Annotation(w, toy_label(img)) for w, img in zip(ws, images)]


def test_image_layer_appends_the_image(gen):
    wrapped = ImageLayer(gen)
    assert wrapped.feature_layers[:-1] == gen.feature_layers
    last = wrapped.feature_layers[-1]
    assert (last.name, last.channels, last.resolution) == (IMAGE_LAYER, 3, 32)
    assert layer_channels(wrapped) == (*layer_channels(gen), 3)
    ws = gen.sample_ws(2, seed=1)
    with torch.no_grad():
        images, feats = wrapped.synthesize(ws)
        ref_images, ref_feats = gen.synthesize(ws)
        assert wrapped.synthesize(ws, return_features=False)[1] == []
    assert torch.equal(images, ref_images) and torch.equal(feats[-1], images) and len(feats) == len(ref_feats) + 1
    assert wrapped.z_dim == gen.z_dim  # everything else is the wrapped generator's
    assert offering_image(wrapped, 3) is wrapped and offering_image(gen, 0) is gen
    assert isinstance(offering_image(gen, 3), ImageLayer)


def test_the_image_teaches_what_blind_codes_cannot(gen, blind_encoder, samples):
    cfg = OneShotConfig(segmenter="mlp3", hidden=16, epochs=150, standardize=True, seed=0)  # per pixel: no borders
    ws = torch.cat([torch.stack([s.ws for s in samples]), gen.sample_ws(1, seed=9)])  # the 2 annotated + 1 held out
    with torch.no_grad():
        images, feats = ImageLayer(gen).synthesize(ws)
    targets = [toy_label(img) for img in images]
    codes_only = fit_segmenter(gen, blind_encoder, samples, cfg, num_classes=2)
    with_image = fit_segmenter(gen, blind_encoder, samples, OneShotConfig(**{**vars(cfg), "image": True}),
                               num_classes=2)
    assert with_image.image_channels == 3 and with_image.layer_channels == (*layer_channels(gen), 3)
    blind = [iou(p, t) for p, t in zip(codes_only.predict(feats[:-1], 32)[0], targets)]
    seeing = [iou(p, t) for p, t in zip(with_image.predict(feats, 32)[0], targets)]
    assert max(blind) < 0.55  # constant codes: one class everywhere
    assert min(seeing[:2]) > 0.9 and seeing[2] > blind[2] + 0.1  # "brighter than the median" is in the colours


def test_image_segmenter_saves_loads_and_annotates(gen, blind_encoder, samples, tmp_path):
    model = fit_segmenter(gen, blind_encoder, samples, OneShotConfig(segmenter="mlp1", epochs=5, image=True),
                          num_classes=2)
    save_classifier(tmp_path / "seg.pt", model, meta={"classes": ["bg", "bright"]})
    loaded = load_classifier(tmp_path / "seg.pt", blind_encoder)
    assert isinstance(loaded, HFCSegmenter) and loaded.image_channels == 3
    assert loaded.segmenter.meta == {"classes": ["bg", "bright"], "image_channels": 3}
    annotate = Annotator(gen, blind_encoder, loaded.segmenter)  # the plain generator: the annotator offers the image
    ws = gen.sample_ws(2, seed=11)
    with torch.no_grad():
        out = annotate(ws)
        _, feats = ImageLayer(gen).synthesize(ws)
    assert torch.equal(out.probs, model.predict(feats, 32)[1])


def test_an_image_segmenter_needs_the_image_channels(blind_encoder):
    from hfc.errors import HFCError
    from hfc.methods import make_classifier

    with pytest.raises(HFCError, match="image channels"):
        make_classifier(None, blind_encoder.layer_channels, blind_encoder, 2, OneShotConfig(image=True))


def test_a_raw_baseline_reads_the_image_too(gen, samples, tmp_path):
    from hfc.methods import make_classifier
    from hfc.oneshot import fit

    cfg = OneShotConfig(epochs=5, image=True, seed=0)
    model = make_classifier("repurpose-mlp", layer_channels(gen), None, 2, cfg, image_channels=3)
    assert model.image_channels == 3 and model.layer_channels == (*layer_channels(gen), 3)
    history = fit(model, gen, samples, cfg)  # fit offers the image itself
    assert len(history) == 5 and history[-1] < history[0]
    save_classifier(tmp_path / "raw.pt", model)
    loaded = load_classifier(tmp_path / "raw.pt")
    assert loaded.image_channels == 3 and loaded.layer_channels == model.layer_channels
    ws = gen.sample_ws(2, seed=11)
    with torch.no_grad():
        _, feats = ImageLayer(gen).synthesize(ws)
        assert torch.equal(Annotator(gen, None, loaded)(ws).probs, model.predict(feats, 32)[1])


def test_the_image_only_control_reads_nothing_but_the_image(gen, samples, tmp_path):
    from hfc.baselines import ImageOnly
    from hfc.errors import HFCError
    from hfc.methods import make_classifier
    from hfc.oneshot import fit

    with pytest.raises(HFCError, match="image-mlp reads the generated image alone"):
        make_classifier("image-mlp", layer_channels(gen), None, 2, OneShotConfig(epochs=5))
    cfg = OneShotConfig(epochs=150, image=True, seed=0)
    model = make_classifier("image-mlp", layer_channels(gen), None, 2, cfg, image_channels=3)
    assert isinstance(model, ImageOnly) and model.layer_channels == (*layer_channels(gen), 3)
    fit(model, gen, samples, cfg)
    ws = torch.cat([torch.stack([s.ws for s in samples]), gen.sample_ws(1, seed=9)])
    with torch.no_grad():
        images, feats = ImageLayer(gen).synthesize(ws)
    labels, probs = model.predict(feats, 32)
    ious = [iou(p, toy_label(img)) for p, img in zip(labels, images)]  # "brighter than its median": the colours
    assert min(ious[:2]) > 0.9 and ious[2] > 0.6  # the 2 annotated, 1 held out (blind codes: < 0.55, above)
    scrambled = [torch.randn_like(h) for h in feats[:-1]] + [feats[-1]]  # other hidden features, the same image
    assert torch.equal(model.predict(scrambled, 32)[1], probs)
    save_classifier(tmp_path / "image.pt", model)
    loaded = load_classifier(tmp_path / "image.pt")
    assert type(loaded) is ImageOnly and torch.equal(loaded.predict(feats, 32)[1], probs)
    assert torch.equal(Annotator(gen, None, loaded)(ws).probs, probs)  # the annotator offers the image
