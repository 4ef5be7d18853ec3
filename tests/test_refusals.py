"""The cases of issue 22 the bad-input table cannot hold: a full disk, messages that name the user's file,
the lock file, commands the quick-start report suggests, and the library-level checks behind the options."""

from __future__ import annotations

import errno
import math
import pathlib
import threading
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from bad_inputs_kit import TINY
from baggan.cli import cli
from baggan.errors import DataError
from baggan.io import write_bytes_atomic, write_json_atomic
from baggan.synth.build import write_random_pieces

sys_path = Path(__file__).parent


def _full_disk_after(monkeypatch, files: int) -> None:
    """Path.write_bytes fails like a full disk (ENOSPC from write(), which names no file) after `files` files."""
    real, count = pathlib.Path.write_bytes, [0]

    def write_bytes(self, data):
        count[0] += 1
        if count[0] > files:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)


def test_generate_on_a_full_disk_leaves_nothing_and_names_the_file(tmp_path, monkeypatch):
    net, _, _ = write_random_pieces(tmp_path / "pieces", TINY, dim=8)
    _full_disk_after(monkeypatch, 3)
    out = tmp_path / "runs" / "g"
    result = CliRunner().invoke(cli, ["generate", "--network", str(net), "--seeds", "0-9", "--outdir", str(out)])
    lines = [line for line in result.output.replace("\r", "\n").splitlines() if line.startswith("error")]
    assert result.exit_code == 1 and lines == [f"error: No space left on device: {out / 'seed0003.png'}"]
    assert list((tmp_path / "runs").iterdir()) == []  # not 3 of 10 PNGs


def test_generate_replaces_a_folder_only_with_overwrite(tmp_path):
    net, _, _ = write_random_pieces(tmp_path / "pieces", TINY, dim=8)
    out = tmp_path / "g"
    args = ["generate", "--network", str(net), "--seeds", "0-1", "--outdir", str(out)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "seed0000.png", "seed0001.png"]
    again = CliRunner().invoke(cli, args[:-4] + ["--seeds", "5", "--outdir", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output
    again = CliRunner().invoke(cli, args[:-4] + ["--seeds", "5", "--outdir", str(out), "--overwrite"])
    assert again.exit_code == 0 and sorted(p.name for p in out.iterdir()) == ["grid.png", "seed0005.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g", "pieces"]


def test_atomic_writes_name_the_users_file_not_the_temporary_one(tmp_path, monkeypatch):
    (tmp_path / "taken").mkdir()
    with pytest.raises(IsADirectoryError) as e:  # the rename onto a folder fails
        write_bytes_atomic(tmp_path / "taken", b"x")
    assert e.value.filename == str(tmp_path / "taken")
    _full_disk_after(monkeypatch, 0)
    with pytest.raises(OSError) as e:
        write_json_atomic(tmp_path / "a.json", {"a": 1})
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(tmp_path / "a.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_a_synthesis_run_keeps_no_lock_file(tmp_path):
    import sys

    sys.path.insert(0, str(sys_path))
    from _synth_toy import run_toy

    run_toy(tmp_path / "out", n=4, shard_size=2, batch=2)
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")) == []


def test_the_index_lock_excludes_while_its_file_comes_and_goes(tmp_path):
    from baggan.synth.shards import LOCK_FILE, index_lock

    counter, inside, overlaps = tmp_path / "n", [0], []

    def work():
        for _ in range(40):
            with index_lock(tmp_path):
                inside[0] += 1
                overlaps.append(inside[0])
                counter.write_text(str(int(counter.read_text() or 0) + 1) if counter.exists() else "1")
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.read_text() == "120" and max(overlaps) == 1 and not (tmp_path / LOCK_FILE).exists()


def test_the_commands_the_quickstart_report_suggests_exist(tmp_path):
    from baggan.quickstart import next_commands

    for argv in next_commands(tmp_path / "qs", "checkpoints/xraysim-64.pt"):
        assert argv[0] == "baggan"
        cmd, args = cli, argv[1:]
        while isinstance(cmd, click.Group):
            cmd, args = cmd.commands[args[0]], args[1:]
        ctx = click.Context(cmd)
        cmd.make_parser(ctx).parse_args(args)  # raises NoSuchOption / BadArgumentUsage for a wrong suggestion


def test_psi_and_latents_are_checked_where_they_enter(tmp_path):
    import torch

    from baggan.oneshot import read_ws
    from baggan.synth import SynthSettings

    for psi, steer in ((math.nan, 0.0), (0.7, math.inf)):
        with pytest.raises(ValueError, match="finite"):
            SynthSettings(n=1, psi=psi, steer=steer, threat=3)
    np.save(tmp_path / "ws.npy", np.array([[[0.0, math.nan]]], np.float32))
    with pytest.raises(DataError, match="NaN or infinite"):
        read_ws(str(tmp_path / "ws.npy"), 1, 2)
    np.save(tmp_path / "ws.npy", np.zeros((1, 1, 2), np.float32))
    assert torch.equal(read_ws(str(tmp_path / "ws.npy"), 1, 2), torch.zeros(1, 1, 2))


def test_config_files_refuse_nan_and_inf(tmp_path):
    from baggan.config import load_config
    from baggan.errors import ConfigError
    from baggan.quickstart import QuickstartConfig

    (tmp_path / "q.yaml").write_text("synth: {psi: .nan}\n")
    with pytest.raises(ConfigError, match="synth.psi: expected a finite number"):
        load_config(tmp_path / "q.yaml", QuickstartConfig)
