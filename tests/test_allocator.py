"""baggan.allocator: glibc keeps freed memory when asked, the switch turns it off, the command asks."""

import platform

import pytest
from click.testing import CliRunner

import baggan.cli
from baggan.allocator import keep_freed_memory

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")


@glibc
def test_mallopt_accepted_on_glibc(monkeypatch):
    monkeypatch.delenv("BAGGAN_MALLOC", raising=False)
    assert keep_freed_memory() is True


def test_system_allocator_switch(monkeypatch):
    monkeypatch.setenv("BAGGAN_MALLOC", "system")
    assert keep_freed_memory() is False


def test_the_command_keeps_freed_memory(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(baggan.cli, "keep_freed_memory", lambda: calls.append(1) or True)
    result = CliRunner().invoke(baggan.cli.cli, ["coco", "stats", str(tmp_path / "missing")])
    assert result.exit_code != 0 and calls == [1]
