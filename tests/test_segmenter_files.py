"""Segmenter files written before issue 21 (tests/fixtures/segmenter-files: `baggan oneshot fit` at commit 088c677 on a
tiny random 16² generator, seed 3, 40 epochs) still load and annotate as they did then."""

from pathlib import Path

import numpy as np
import pytest
import torch
from toygen import single_thread  # noqa: F401 - tiny tensors: one thread is faster on a busy CPU

from baggan.synth.build import load_annotator

FIXTURES = Path(__file__).parent / "fixtures" / "segmenter-files"
HAMMER, KNIFE = 3, 11


@pytest.mark.parametrize("name, hfc, method, segmenter", [("swav-fcn3", "hfc.pt", "swav", "fcn3"),
                                                          ("repurpose-mlp", None, "repurpose-mlp", "repurpose-mlp")])
def test_a_segmenter_file_of_the_earlier_code_annotates_as_it_did(name, hfc, method, segmenter):
    wiring = load_annotator(FIXTURES / "net.pt", FIXTURES / hfc if hfc else None, FIXTURES / f"{name}.pt",
                            torch.device("cpu"))
    meta = wiring.provenance["segmenter_meta"]
    assert wiring.class_to_category == [0, HAMMER, KNIFE] and wiring.label_set.name == "pidray"
    assert meta["method"] == method and meta["segmenter"] == segmenter and meta["samples"] == ["seed 3"]
    out = wiring.annotate(wiring.gen.sample_ws(2, psi=0.7, seed=0))
    labels = np.asarray(wiring.class_to_category)[out.labels.numpy()]
    np.testing.assert_array_equal(labels, np.load(FIXTURES / "expected.npz")[name.replace("-", "_")])
