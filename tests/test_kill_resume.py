"""kill -9 at any moment, then the documented resume command: the same weights as an uninterrupted run, and no
temporary file or process left behind (training: one process and two under torchrun; synthesis: the forked
writer process)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from baggan.cli import cli
from baggan.config import save_config
from baggan.stylegan2.training_state import latest_snapshot, load_snapshot
from train_fixtures import ROOT, one_thread, tiny_config, write_tiny_data  # noqa: F401 (autouse fixture)

sys.path.insert(0, str(Path(__file__).parent))
from _synth_toy import run_toy, sigint_default, snapshot  # noqa: E402

KILLED = str(Path(__file__).parent / "_killed_run.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary files and folders, lock files: what a clean run leaves none of."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*"))


def processes_naming(path: Path) -> list[int]:
    """Ids of the live processes whose command line names `path` (a writer or rank left running)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                cmdline = (d / "cmdline").read_bytes()
                state = (d / "stat").read_text().split(")")[-1].split()[0]
            except OSError:
                continue
            if str(path).encode() in cmdline and state != "Z":
                pids.append(int(d.name))
    return pids


def same_weights(a: Path, b: Path) -> None:
    sa, sb = load_snapshot(a), load_snapshot(b)
    for name in ("G", "D", "G_ema"):
        for key, value in sa["nets"][name].items():
            assert torch.equal(value, sb["nets"][name][key]), f"{name}.{key} differs"
    assert sa["extra"]["training"]["counters"] == sb["extra"]["training"]["counters"]


@pytest.fixture(scope="module")
def run_setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    torch.set_num_threads(1)  # as the subprocesses (OMP_NUM_THREADS=1): tiny networks run fastest on one
    data = write_tiny_data(tmp / "data")
    # 6 steps of 4 images in chunks of 2; a tick (and a snapshot) after steps 1, 3, 5 and 6
    cfg = tiny_config(schedule={"batch": 4, "batch_gpu": 2, "total_kimg": 0.024, "kimg_per_tick": 0.008,
                                "snapshot_ticks": 1, "image_snapshot_ticks": 100},
                      loss={"r1_interval": 4, "r1_gamma": 1.0}, augment={"p": 0.3, "interval": 2, "kimg": 0.1})
    save_config(tmp / "cfg.yaml", cfg)
    r = CliRunner().invoke(cli, ["train", "--config", str(tmp / "cfg.yaml"), "--data", str(data),
                                 "--outdir", str(tmp / "straight"), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    return tmp, data, latest_snapshot(tmp / "straight")


@pytest.mark.parametrize("at, fraction", [(1, 0.0), (2, 0.5)], ids=["before-first-snapshot", "mid-snapshot-write"])
def test_train_killed_then_resume_auto_gives_the_same_weights(run_setup, tmp_path, at, fraction):
    tmp, data, straight = run_setup
    out = tmp_path / "run"
    cmd = [sys.executable, KILLED, str(at), str(fraction), "train", "--config", str(tmp / "cfg.yaml"),
           "--data", str(data), "--outdir", str(out), "--device", "cpu"]
    killed = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    snapshots = sorted(p.name for p in out.glob("snapshot-*.pt"))
    assert len(snapshots) == at - 1 and list(out.glob(".snapshot-*.pt.*.tmp"))  # cut off inside the write
    # the documented resume command: no --config (OUTDIR/config.yaml), also when no snapshot was written yet
    r = CliRunner().invoke(cli, ["train", "--resume", "auto", "--data", str(data), "--outdir", str(out),
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert ("resuming from" in r.output) == (at > 1)
    same_weights(straight, latest_snapshot(out))
    assert leftovers(out) == [] and processes_naming(out) == []
    ticks = [json.loads(line)["tick"] for line in (out / "stats.jsonl").read_text().splitlines()]
    assert ticks == [0, 1, 2, 3]


@pytest.mark.slow
def test_train_two_processes_killed_mid_snapshot_then_resumed(run_setup, tmp_path):
    tmp, data, _ = run_setup
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    args = ["train", "--config", str(tmp / "cfg.yaml"), "--data", str(data), "--device", "cpu"]
    straight = subprocess.run([*torchrun, "-m", "baggan", *args, "--outdir", str(tmp_path / "two")], env=ENV,
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr[-3000:]
    out = tmp_path / "cut"
    killed = subprocess.run([*torchrun, KILLED, "2", "0.5", *args, "--outdir", str(out)], env=ENV,
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert killed.returncode != 0 and len(list(out.glob("snapshot-*.pt"))) == 1, killed.stderr[-3000:]
    deadline = time.monotonic() + 30
    while processes_naming(out) and time.monotonic() < deadline:  # torchrun stops the other rank
        time.sleep(0.2)
    assert processes_naming(out) == []
    resumed = subprocess.run([*torchrun, "-m", "baggan", "train", "--resume", "auto", "--data", str(data),
                              "--device", "cpu", "--outdir", str(out)], env=ENV, capture_output=True, text=True,
                             timeout=300, cwd=tmp_path)
    assert resumed.returncode == 0 and "resuming from" in resumed.stdout, resumed.stderr[-3000:]
    same_weights(latest_snapshot(tmp_path / "two"), latest_snapshot(out))
    assert leftovers(out) == [] and processes_naming(out) == []


def test_synthesis_writer_process_dies_with_a_killed_caller_and_leaves_nothing(tmp_path):
    settings = dict(n=25, shard_size=5, batch=2, min_area=3, writer="process")
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from _synth_toy import run_toy; "
            f"run_toy({str(tmp_path / 'cut')!r}, sleep=0.2, **{settings!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], env=ENV, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (tmp_path / "cut" / "shard-00000").is_dir() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    writers = [p for p in processes_naming(tmp_path / "cut") if p != proc.pid]
    assert len(writers) == 1, writers  # the forked writer
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while processes_naming(tmp_path / "cut") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_naming(tmp_path / "cut") == []  # the writer died with its caller ...
    assert leftovers(tmp_path / "cut") == []  # ... and removed the shard it was writing
    summary = run_toy(tmp_path / "cut", **settings)
    assert summary.shards_skipped and leftovers(tmp_path / "cut") == []
    run_toy(tmp_path / "full", **settings)
    assert snapshot(tmp_path / "cut") == snapshot(tmp_path / "full")


def test_ctrl_c_leaves_no_partial_shard_nor_lock(tmp_path):
    for writer in ("process", "thread"):
        out = tmp_path / writer
        code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from _synth_toy import run_toy; "
                f"run_toy({str(out)!r}, sleep=0.2, n=25, shard_size=5, batch=2, writer={writer!r})")
        proc = subprocess.Popen([sys.executable, "-c", code], env=ENV, start_new_session=True,
                                preexec_fn=sigint_default, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not (out / "shard-00000").is_dir() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode != 0 and b"KeyboardInterrupt" in err
        assert leftovers(out) == [] and processes_naming(out) == [], writer
