"""Denormal floats flushed to zero by the `baggan` command (baggan/denormals.py)."""

import platform

import pytest
import torch
from click.testing import CliRunner

import baggan.cli
from baggan.denormals import flush_denormals


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="flush-to-zero is an x86 (SSE3) setting")
def test_flush_denormals_zeroes_tiny_values(monkeypatch):
    monkeypatch.delenv("BAGGAN_DENORMALS", raising=False)
    x = torch.tensor([1e-39, 1e-30])
    assert (x * 1.0)[0].item() > 0  # a denormal survives without the setting (conftest turns it off per test)
    assert flush_denormals() is True
    y = x * 1.0
    assert y[0].item() == 0.0 and y[1].item() == pytest.approx(1e-30)


def test_keep_switch(monkeypatch):
    monkeypatch.setenv("BAGGAN_DENORMALS", "keep")
    assert flush_denormals() is False
    assert (torch.tensor([1e-39]) * 1.0).item() > 0


@pytest.mark.parametrize(
    "args, flushed",
    [(["train", "--config", "missing.yaml"], True), (["train", "--help"], False), (["coco", "stats", "missing"], False)],
)
def test_the_command_flushes_denormals_where_it_computes(monkeypatch, args, flushed):
    calls = []
    monkeypatch.setattr(baggan.cli, "flush_denormals", lambda: calls.append(1) or True)
    CliRunner().invoke(baggan.cli.cli, args)
    assert calls == ([1] if flushed else [])
