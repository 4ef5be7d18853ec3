"""Training images: deterministic order by (seed, step), shards, x-flip, labels, streaming == in memory."""

import numpy as np
import torch

from baggan.stylegan2.dataset import TrainingImages, batch_indices, step_loader
from train_fixtures import write_tiny_data


def test_order_is_a_function_of_seed_and_step_and_covers_each_epoch():
    n, batch = 10, 4
    steps = [batch_indices(7, n, s, batch) for s in range(5)]  # 20 samples = 2 epochs
    flat = np.concatenate(steps)
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    assert not np.array_equal(flat[:10], flat[10:])  # reshuffled per epoch
    assert np.array_equal(batch_indices(7, n, 3, batch), steps[3])  # no hidden state
    assert not np.array_equal(batch_indices(8, n, 0, batch), steps[0])


def test_xflip_labels_and_streaming(tmp_path):
    root = write_tiny_data(tmp_path / "d", n=6)
    mem = TrainingImages(root, 16, 3, xflip=True, labels=True, in_memory=True, progress=False)
    disk = TrainingImages(root, 16, 3, xflip=True, labels=True, in_memory=False)
    assert len(mem) == 12 and mem.c_dim == 2 and disk.cache is None
    assert np.array_equal(mem.image(7), mem.image(1)[:, :, ::-1])
    assert mem.label(0).tolist() == [1.0, 0.0] and mem.label(1).tolist() == [0.0, 1.0]  # gun, knife alternate
    # process 1 of 2 reads samples [2, 4) of each global batch of 4, from step 3 on
    for loader_images, workers in ((mem, 0), (disk, 2)):
        it = iter(step_loader(loader_images, seed=0, batch=4, start=2, stop=4, first_step=3, workers=workers))
        for step in (3, 4):
            images, labels = next(it)
            expected = mem.batch(batch_indices(0, 12, step, 4)[2:4])
            assert images.dtype == torch.uint8 and torch.equal(images, expected[0]) and torch.equal(labels, expected[1])


def test_repeat_shows_a_category_n_times_per_epoch_and_rejects_unknown_names(tmp_path):
    import pytest

    from baggan.errors import ConfigError
    from baggan.stylegan2.training_config import DataConfig

    root = write_tiny_data(tmp_path / "d", n=6)  # samples 0, 2, 4 hold a gun, 1, 3, 5 a knife
    plain = TrainingImages(root, 16, 3, labels=True, in_memory=False)
    assert plain.schedule.tolist() == list(range(6))  # no repeat: the order of a plain run, unchanged
    images = TrainingImages(root, 16, 3, xflip=True, in_memory=False, repeat={"knife": 3})
    counts = np.bincount(images.schedule, minlength=len(images))
    assert len(images) == 12 and counts.tolist() == [1, 3] * 6  # mirrored copies repeat as their file
    loader = step_loader(images, seed=0, batch=4, start=0, stop=4, first_step=0, workers=0)
    it = iter(loader)
    seen = np.concatenate([next(it)[0].numpy() for _ in range(6)])  # 24 samples = one epoch of the schedule
    knives = sum(any(np.array_equal(x, images.image(i)) for i in range(1, 12, 2)) for x in seen)
    assert knives == 18  # 3 of every 4 samples drawn hold the repeated category
    with pytest.raises(ConfigError, match="data.repeat: axe not among"):
        TrainingImages(root, 16, 3, repeat={"axe": 2})
    with pytest.raises(ValueError, match="repeat: counts must be integers >= 1"):
        DataConfig(repeat={"knife": 0})
