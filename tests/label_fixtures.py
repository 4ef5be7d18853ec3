"""Shared set-up of the annotator tests: a tiny random 16² generator and HFC encoder, and a session on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from baggan.label.app import create_app
from baggan.label.session import LabelSession, LabelSettings

FAST = LabelSettings(segmenter="fcn3", hidden=8, epochs=10, project_steps=5, max_upload_mb=0.05, device="cpu")


@pytest.fixture(scope="module")
def pieces(tmp_path_factory) -> tuple[Path, Path]:
    """(network, hfc) files of a tiny random generator (tiny-16 config) and HFC encoder (D = 8)."""
    from train_fixtures import tiny_config

    from baggan.synth.build import write_random_pieces

    network, hfc, _ = write_random_pieces(tmp_path_factory.mktemp("label-pieces"), tiny_config().network, dim=8)
    return network, hfc


def make_app(pieces: tuple[Path, Path], workdir: Path, settings: LabelSettings = FAST):
    """(Flask app, session) on the tiny pieces with its work folder at `workdir`."""
    session = LabelSession(*pieces, workdir, settings)
    return create_app(session), session

