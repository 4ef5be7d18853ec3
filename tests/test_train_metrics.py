"""The FID/KID hook: computed every N ticks on a configurable sample count, logged and plotted."""

import json

import torch
import torch.nn.functional as F

from baggan.stylegan2.distributed import Processes
from baggan.stylegan2.training_loop import Trainer
from train_fixtures import one_thread, tiny_config, write_tiny_data  # noqa: F401 (autouse fixture)


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
