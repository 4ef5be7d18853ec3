"""Exact resume (bit-identical weights after an interruption), NaN handling, and ADA inside the loop."""

import hashlib

import pytest
import torch

from baggan.errors import TrainingDiverged
from baggan.stylegan2 import loss as loss_module
from baggan.stylegan2.distributed import Processes
from baggan.stylegan2.training_loop import Trainer
from baggan.stylegan2.training_state import latest_snapshot, load_snapshot
from train_fixtures import one_thread, tiny_config, write_tiny_data  # noqa: F401 (autouse fixture)

CPU = Processes(rank=0, world=1, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tiny_data(tmp_path_factory.mktemp("tiny"))


def config(augment=None, optim=None, **schedule):
    # 6 steps of 4 images; ticks after steps 1, 3, 5, 6; a snapshot every tick; PL at steps 0 and 4,
    # R1 at steps 0 and 4; augmentation on from the start (p = 0.3) and tuned every 2 steps.
    return tiny_config(schedule={"batch": 4, "batch_gpu": 2, "total_kimg": 0.024, "kimg_per_tick": 0.008,
                                 "snapshot_ticks": 1, "image_snapshot_ticks": 100, **schedule},
                       loss={"r1_interval": 4, "r1_gamma": 1.0}, augment=augment or {"p": 0.3, "interval": 2, "kimg": 0.1},
                       optim=optim or {})


class Interrupt(Exception):
    pass


def interrupt_at(step):
    def hook(s):
        if s == step:
            raise Interrupt
    return hook


def assert_same_state(snap_a: dict, snap_b: dict):
    for name in ("G", "D", "G_ema"):
        for key, value in snap_a["nets"][name].items():
            assert torch.equal(value, snap_b["nets"][name][key]), f"{name}.{key} differs"
    a, b = snap_a["extra"]["training"], snap_b["extra"]["training"]
    for name in ("G_opt", "D_opt"):
        for pid, st in a[name]["state"].items():
            for k, v in st.items():
                assert torch.equal(v, b[name]["state"][pid][k]), f"{name} state {pid}.{k} differs"
    assert a["augment_p"] == b["augment_p"] and a["pl_mean"] == b["pl_mean"] and a["counters"] == b["counters"]


def test_interrupted_and_resumed_run_is_bit_identical(data, tmp_path):
    cfg = config()
    straight = Trainer(cfg, data, tmp_path / "a", CPU, progress=False).train()
    with pytest.raises(Interrupt):  # killed after step 4: the last snapshot is from step 3
        Trainer(cfg, data, tmp_path / "b", CPU, progress=False).train(on_step=interrupt_at(4))
    snap = latest_snapshot(tmp_path / "b")
    assert load_snapshot(snap)["extra"]["training"]["counters"]["step"] == 3
    resumed = Trainer(cfg, data, tmp_path / "b", CPU, resume=snap, progress=False).train()
    a, b = load_snapshot(straight), load_snapshot(resumed)
    assert a["extra"]["training"]["counters"]["step"] == 6 and a["extra"]["training"]["augment_p"] != 0.3  # ADA moved p
    assert_same_state(a, b)
    ticks = [line for line in (tmp_path / "b" / "stats.jsonl").read_text().splitlines()]
    assert len(ticks) == 4  # the replayed tick was not logged twice


def test_nan_loss_stops_with_one_line_and_keeps_the_checkpoint(data, tmp_path, monkeypatch):
    cfg = config(total_kimg=0.008)  # 2 steps, snapshot after the second
    good = Trainer(cfg, data, tmp_path, CPU, progress=False).train()
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    real = loss_module.LogisticLoss.discriminator
    monkeypatch.setattr(loss_module.LogisticLoss, "discriminator", lambda self, r, f: real(self, r, f) * float("nan"))
    with pytest.raises(TrainingDiverged) as err:
        Trainer(config(), data, tmp_path, CPU, resume=good, progress=False).train()
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("loss D/loss is nan at iteration 2 ") and str(good) in msg
    assert latest_snapshot(tmp_path) == good and hashlib.sha256(good.read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("bias, start, direction", [(30.0, 0.0, 1), (-30.0, 0.05, -1)])
def test_ada_p_rises_on_overfitting_d_and_falls_otherwise(data, tmp_path, bias, start, direction):
    cfg = config(augment={"p": start, "interval": 1, "kimg": 0.1}, optim={"d_lr": 1e-12, "g_lr": 1e-12},
                 total_kimg=0.008, snapshot_ticks=100)
    trainer = Trainer(cfg, data, tmp_path, CPU, progress=False)
    with torch.no_grad():  # D says "real" (bias > 0: over-fitting-like, r_t = 1) or "fake" (r_t = -1) for everything
        trainer.D.b4.out.bias.fill_(bias)
    trainer.train()
    p = float(trainer.augment.p)
    assert (p - start) * direction > 0 and 0 <= p <= 1
