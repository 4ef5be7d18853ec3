"""Scale-out and crashes with real processes: 2 ranks equal 1 process; SIGKILL mid-run, then resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from baggan.data.coco_tools import merge

sys.path.insert(0, str(Path(__file__).parent))
from _synth_toy import run_toy, snapshot  # noqa: E402

TOY = str(Path(__file__).parent / "_synth_toy.py")
SETTINGS = dict(n=18, shard_size=4, min_area=3)


def _spawn(outdir, batch, sleep=0.0, rank=0, world=1):
    env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), OMP_NUM_THREADS="1")
    args = [sys.executable, TOY, str(outdir), str(SETTINGS["n"]), str(SETTINGS["shard_size"]), str(batch), str(sleep)]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_two_ranks_write_the_same_data_set_as_one_process(tmp_path):
    procs = [_spawn(tmp_path / "two", batch=3, rank=r, world=2) for r in (0, 1)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read().decode()
    run_toy(tmp_path / "one", batch=5, **SETTINGS)
    index = json.loads((tmp_path / "two" / "index.json").read_text())
    assert index["complete"] and [s["rank"] for s in index["shards"]] == [0, 1, 0, 1, 0]
    assert snapshot(tmp_path / "two") == snapshot(tmp_path / "one")
    merge([tmp_path / "two"], tmp_path / "m2")
    merge([tmp_path / "one"], tmp_path / "m1")
    merged = [json.loads((tmp_path / m / "annotations.json").read_text()) for m in ("m1", "m2")]
    assert [{k: d[k] for k in ("images", "annotations", "categories")} for d in merged][0] == \
        {k: merged[1][k] for k in ("images", "annotations", "categories")}


def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(tmp_path):
    proc = _spawn(tmp_path / "cut", batch=1, sleep=0.05)
    deadline = time.time() + 60
    while not (tmp_path / "cut" / "shard-00001").exists() and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in (tmp_path / "cut").glob("shard-*"))
    assert done and len(done) < 5, done
    summary = run_toy(tmp_path / "cut", batch=2, **SETTINGS)
    assert summary.shards_skipped == list(range(len(done)))
    run_toy(tmp_path / "full", batch=4, **SETTINGS)
    assert not list((tmp_path / "cut").glob(".shard-*"))
    assert snapshot(tmp_path / "cut") == snapshot(tmp_path / "full")
