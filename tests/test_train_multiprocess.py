"""Two CPU processes under torchrun (gloo) train the same networks as one process at the same global batch."""

import os
import subprocess
import sys

import torch

from baggan.config import save_config
from baggan.stylegan2.distributed import Processes
from baggan.stylegan2.training_loop import Trainer
from baggan.stylegan2.training_state import latest_snapshot, load_snapshot
from train_fixtures import ROOT, one_thread, tiny_config, write_tiny_data  # noqa: F401 (autouse fixture)


def test_two_processes_match_one(tmp_path):
    data = write_tiny_data(tmp_path / "data")
    # 3 steps, global batch 4 in chunks of 2: one chunk per process with 2 processes, two chunks with one.
    # WGAN-GP, R1 at steps 0 and 2, PL at step 0, style mixing, augmentation with p tuned every step.
    cfg = tiny_config(schedule={"batch": 4, "batch_gpu": 2, "total_kimg": 0.012, "kimg_per_tick": 0.004,
                                "snapshot_ticks": 100, "image_snapshot_ticks": 100},
                      loss={"kind": "wgan-gp", "r1_interval": 2, "r1_gamma": 1.0},
                      augment={"p": 0.3, "interval": 1, "kimg": 0.1})
    save_config(tmp_path / "cfg.yaml", cfg)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "baggan", "train", "--config", str(tmp_path / "cfg.yaml"), "--data", str(data),
           "--outdir", str(tmp_path / "two"), "--device", "cpu"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "x2" in run.stdout  # "training on cpu x2"

    one = load_snapshot(Trainer(cfg, data, tmp_path / "one", Processes(0, 1, torch.device("cpu")),
                                progress=False).train())
    two = load_snapshot(latest_snapshot(tmp_path / "two"))
    for name in ("G", "D", "G_ema"):
        for key, value in one["nets"][name].items():
            assert torch.allclose(value, two["nets"][name][key], rtol=1e-4, atol=1e-5), f"{name}.{key}"
    a, b = one["extra"]["training"], two["extra"]["training"]
    assert a["augment_p"] == b["augment_p"] and a["counters"] == b["counters"]
    assert abs(a["pl_mean"] - b["pl_mean"]) < 1e-5
