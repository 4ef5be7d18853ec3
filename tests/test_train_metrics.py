"""The FID/KID hook: computed every N ticks on a configurable sample count, logged and plotted."""

import json

import torch
import torch.nn.functional as F

from baggan.stylegan2.distributed import Processes
from baggan.stylegan2.training_loop import Trainer
from train_fixtures import load_script, one_thread, tiny_config, write_tiny_data  # noqa: F401 (autouse fixture)


def pooled_colours(images: torch.Tensor):
    """Stand-in for Inception: 2x2 average colours, 12 features."""
    return F.adaptive_avg_pool2d(images.float(), 2).flatten(1).double().numpy()


def test_fid_every_two_ticks_and_at_the_end(tmp_path):
    data = write_tiny_data(tmp_path / "data")
    cfg = tiny_config(schedule={"batch": 4, "batch_gpu": 2, "total_kimg": 0.016, "kimg_per_tick": 0.004,
                                "snapshot_ticks": 100, "image_snapshot_ticks": 100},
                      metrics={"fid_ticks": 2, "fid_samples": 10})
    seen = []
    Trainer(cfg, data, tmp_path / "run", Processes(0, 1, torch.device("cpu")), progress=False,
            extractor=lambda x: seen.append(len(x)) or pooled_colours(x)).train()
    records = [json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    with_fid = [r["tick"] for r in records if "fid" in r]
    assert with_fid == [0, 2, 3]  # every 2 ticks, and the last one
    assert all(r["fid"] >= 0 and "kid" in r for r in records if "fid" in r)
    assert sum(seen) == 10 + 3 * 10  # reals once (10 of 12 images), then 10 fakes per evaluation
    assert (tmp_path / "run" / "curves.png").is_file()


def test_fid_snapshots_script_matches_the_loop_and_keeps_old_rows(tmp_path, monkeypatch):
    """scripts/fid_snapshots.py measures each snapshot as the loop's probe would, and keeps rows of pruned ones."""
    script = load_script("fid_snapshots")
    monkeypatch.setattr(script, "inception_extractor", lambda device: pooled_colours)

    data = write_tiny_data(tmp_path / "data")
    run = tmp_path / "run"
    cfg = tiny_config(schedule={"batch": 4, "batch_gpu": 2, "total_kimg": 0.012, "kimg_per_tick": 0.004,
                                "snapshot_ticks": 1, "image_snapshot_ticks": 100},
                      metrics={"fid_ticks": 1, "fid_samples": 10})
    Trainer(cfg, data, run, Processes(0, 1, torch.device("cpu")), progress=False, extractor=pooled_colours).train()
    logged = {round(r["kimg"], 3): r["fid"] for r in map(json.loads, (run / "stats.jsonl").read_text().splitlines())}

    out = tmp_path / "fid.json"
    script.main(["--run", str(run), "--data", str(data), "--samples", "10", "--every-kimg", "0.008",
                 "--out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [r["kimg"] for r in rows] == [0.004, 0.012]  # snapshots at 0.004, 0.008, 0.012, thinned to 0.008 apart
    for r in rows:
        assert abs(r["fid"] - logged[r["kimg"]]) <= 1e-6 * max(1.0, logged[r["kimg"]]), (r, logged)
    assert out.with_suffix(".png").is_file()

    (run / rows[0]["file"]).unlink()  # a pruned snapshot: its row stays, the rest is reused, not recomputed
    script.main(["--run", str(run), "--data", str(data), "--samples", "10", "--out", str(out)])
    again = json.loads(out.read_text())["rows"]
    assert [r["kimg"] for r in again] == [0.004, 0.008, 0.012]
    assert again[0] == rows[0] and again[2] == rows[1]
    assert abs(again[1]["fid"] - logged[0.008]) <= 1e-6 * max(1.0, logged[0.008])
