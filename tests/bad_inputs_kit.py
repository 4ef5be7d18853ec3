"""The inputs of the bad-input table (tests/test_bad_inputs.py): tiny good files, and damaged copies of them.

`build_kit(root)` writes everything under `root` and returns {placeholder: path}; a case's command line
names them as {placeholder}. Every damaged COCO data set is a copy of one good tiny data set with a single
problem, named coco_<problem>.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import cv2
import numpy as np
import torch

from baggan.config import save_config
from baggan.data.coco import CocoWriter, Instance
from baggan.stylegan2 import NetworkConfig, build_discriminator, build_generator, save_network
from baggan.synth.build import write_random_pieces
from train_fixtures import ROOT, tiny_config

TINY = NetworkConfig(cfg="custom", resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256,
                     channel_max=32, num_fp16_res=0, d_architecture="resnet", mbstd_group_size=2)
HAMMER = 3  # a PIDRay category id


class Evil:
    """A pickle payload that would create the file MARK if any loader ran it."""

    mark = ""

    def __reduce__(self):
        return os.system, (f"touch {self.mark}",)


def write_coco(root: Path, n: int = 3, size: int = 16) -> Path:
    """n grey scans with one square instance each (PIDRay categories 3 and 11), and a latents.npy."""
    from baggan.data.labelsets import PIDRAY

    rng = np.random.default_rng(0)
    writer = CocoWriter(root, PIDRAY.coco_categories())
    for i in range(n):
        img = np.full((size, size, 3), 200, np.uint8)
        label = np.zeros((size, size), np.int64)
        x, y = rng.integers(1, size - 6, 2)
        cat = (3, 11)[i % 2]
        img[y:y + 5, x:x + 5] = 40
        label[y:y + 5, x:x + 5] = cat
        writer.add(img, label, [Instance(cat, label == cat)], meta={"latent_file": "latents.npy", "latent_row": i,
                                                                     "confidence": 0.9})
    writer.close()
    np.save(root / "latents.npy", rng.standard_normal((n, 8)).astype(np.float32))
    return root


def _edit_json(root: Path, edit) -> None:
    path = root / "annotations.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _first_label(root: Path) -> Path:
    return root / "labels" / json.loads((root / "annotations.json").read_text())["images"][0]["label_file"]


def _first_image(root: Path) -> Path:
    return root / "images" / json.loads((root / "annotations.json").read_text())["images"][0]["file_name"]


def _set_first_image(key, value):
    def edit(doc):
        doc["images"][0][key] = value
    return edit


# problem name → what it does to a good data set (each leaves exactly one problem)
COCO_DAMAGE = {
    "images_not_objects": lambda r: _edit_json(r, lambda d: d["images"].__setitem__(0, 1)),
    "not_an_object": lambda r: (r / "annotations.json").write_text("[1, 2]"),
    "no_annotations_list": lambda r: _edit_json(r, lambda d: d.pop("annotations")),
    "malformed_json": lambda r: (r / "annotations.json").write_text('{"images": ['),
    "duplicate_image_id": lambda r: _edit_json(r, lambda d: d["images"][1].update(id=d["images"][0]["id"])),
    "duplicate_annotation_id": lambda r: _edit_json(
        r, lambda d: d["annotations"][1].update(id=d["annotations"][0]["id"])),
    "unknown_category": lambda r: _edit_json(r, lambda d: d["annotations"][0].update(category_id=999)),
    "unknown_image": lambda r: _edit_json(r, lambda d: d["annotations"][0].update(image_id=999)),
    "negative_width": lambda r: _edit_json(r, _set_first_image("width", -16)),
    "string_id": lambda r: _edit_json(r, _set_first_image("id", "one")),
    "image_of_another_size": lambda r: cv2.imwrite(str(_first_image(r)), np.zeros((8, 8, 3), np.uint8)),
    "nan_in_json": lambda r: _edit_json(r, _set_first_image("confidence", float("nan"))),
    "missing_image": lambda r: _first_image(r).unlink(),
    "truncated_image": lambda r: _first_image(r).write_bytes(_first_image(r).read_bytes()[:60]),
    "image_not_png": lambda r: _first_image(r).write_text("not an image"),
    "missing_label_map": lambda r: _first_label(r).unlink(),
    "rgb_label_map": lambda r: cv2.imwrite(str(_first_label(r)), np.zeros((16, 16, 3), np.uint8)),
    "unknown_label_id": lambda r: cv2.imwrite(str(_first_label(r)), np.full((16, 16), 99, np.uint8)),
    "label_map_size": lambda r: cv2.imwrite(str(_first_label(r)), np.zeros((8, 8), np.uint8)),
    "rle_of_another_size": lambda r: _edit_json(r, lambda d: d["annotations"][0]["segmentation"].update(size=[8, 8])),
    "nan_latents": lambda r: np.save(r / "latents.npy", np.full((3, 8), np.nan, np.float32)),
    "latent_row_out_of_range": lambda r: _edit_json(r, _set_first_image("latent_row", 7)),
    "bad_index": lambda r: (r / "index.json").write_text('{"shards": 3}'),
    "index_names_missing_shard": lambda r: (r / "index.json").write_text('{"shards": [{"name": "shard-00009"}]}'),
}


def build_kit(root: Path) -> dict[str, Path]:
    """Write every input the table names under `root`; returns {placeholder: path}."""
    root.mkdir(parents=True, exist_ok=True)
    kit: dict[str, Path] = {"in": root, "missing": root / "no-such-file.pt", "missing_dir": root / "no-such-dir",
                            "mark": root / "PWNED"}
    kit["net"], kit["hfc"], kit["seg"] = write_random_pieces(root / "pieces", TINY, dim=16)
    g = build_generator(TINY).eval()
    save_network(root / "net_with_d.pt", {"G_ema": g, "D": build_discriminator(TINY).eval()}, TINY)
    save_network(root / "d_only.pt", {"D": build_discriminator(TINY).eval()}, TINY)
    kit["net_with_d"], kit["d_only"] = root / "net_with_d.pt", root / "d_only.pt"

    # files that are not what they claim to be
    Evil.mark = str(kit["mark"])
    torch.save({"x": Evil()}, root / "evil.pt")
    with open(root / "evil.pkl", "wb") as f:
        pickle.dump({"G_ema": Evil()}, f)
    (root / "garbage.pt").write_bytes(np.random.default_rng(0).bytes(2048))
    (root / "empty.pt").write_bytes(b"")
    (root / "text.txt").write_text("hello\n")
    net = kit["net"].read_bytes()
    (root / "truncated.pt").write_bytes(net[: len(net) // 2])
    for name in ("evil.pt", "evil.pkl", "garbage.pt", "empty.pt", "text.txt", "truncated.pt"):
        kit[name.replace(".", "_")] = root / name

    # latents and masks for `oneshot fit`
    num_ws = g.num_ws
    np.save(root / "ws_nan.npy", np.full((1, num_ws, TINY.w_dim), np.nan, np.float32))
    torch.save(torch.full((num_ws, TINY.w_dim), float("inf")), root / "ws_inf.pt")
    np.save(root / "ws_shape.npy", np.zeros((1, 3, 5), np.float32))
    np.save(root / "ws_objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(root / "ws_two.npy", np.zeros((2, num_ws, TINY.w_dim), np.float32))
    mask = np.zeros((16, 16), np.uint8)
    mask[4:10, 4:10] = HAMMER
    cv2.imwrite(str(root / "mask.png"), mask)
    colour = np.zeros((16, 16, 3), np.uint8)
    colour[4:10, 4:10] = (0, 0, 255)
    cv2.imwrite(str(root / "mask_colour.png"), colour)
    cv2.imwrite(str(root / "mask_small.png"), mask[:8, :8])
    cv2.imwrite(str(root / "mask_unknown.png"), np.full((16, 16), 77, np.uint8))
    cv2.imwrite(str(root / "scan.png"), np.full((16, 16, 3), 128, np.uint8))
    cv2.imwrite(str(root / "scan_small.png"), np.full((8, 8, 3), 128, np.uint8))
    for name in ("ws_nan.npy", "ws_inf.pt", "ws_shape.npy", "ws_objects.npy", "ws_two.npy", "mask.png",
                 "mask_colour.png", "mask_small.png", "mask_unknown.png", "scan.png", "scan_small.png"):
        kit[name.replace(".", "_")] = root / name

    # configs
    save_config(root / "train.yaml", tiny_config())
    (root / "bad.yaml").write_text("schedule: [unclosed\n")
    (root / "unknown_key.yaml").write_text("no_such_key: 1\n")
    (root / "list.yaml").write_text("- 1\n- 2\n")
    text = (root / "train.yaml").read_text()
    (root / "train_nan.yaml").write_text(text.replace("total_kimg: 0.032", "total_kimg: .nan"))
    (root / "train_res64.yaml").write_text(text.replace("resolution: 16", "resolution: 64"))
    (root / "sim_bad.yaml").write_text("threat_rate: 7\n")
    (root / "judge_inside.yaml").write_text("min_inside: 1.5\n")
    (root / "judge_hard.yaml").write_text("clutter_windows: 0.5\ncut_windows: 0.5\n")
    for name in ("train.yaml", "bad.yaml", "unknown_key.yaml", "list.yaml", "train_nan.yaml", "train_res64.yaml",
                 "sim_bad.yaml", "judge_inside.yaml", "judge_hard.yaml"):
        kit[name.replace(".", "_")] = root / name
    kit["hfc_tiny"] = ROOT / "configs" / "hfc" / "tiny.yaml"
    kit["downstream_cfg"] = ROOT / "configs" / "eval" / "downstream-cpu.yaml"
    kit["oneshot_cfg"] = ROOT / "configs" / "eval" / "oneshot-tiny.yaml"
    (root / "sim_no_window.yaml").write_text("threat_rate: 0.5\n")
    tiny = kit["oneshot_cfg"].read_text()
    for name, sim in (("oneshot_sim_missing", root / "no-such-sim.yaml"), ("oneshot_sim_no_window",
                                                                          root / "sim_no_window.yaml")):
        (root / f"{name}.yaml").write_text(tiny.replace("scans:\n", f"scans:\n  sim: {sim}\n"))
        kit[f"{name}_yaml"] = root / f"{name}.yaml"
    for name, sim in (("qs_windows_missing", root / "no-such-sim.yaml"), ("qs_windows_no_window",
                                                                         root / "sim_no_window.yaml")):
        (root / f"{name}.yaml").write_text(f"windows: {sim}\n")
        kit[f"{name}_yaml"] = root / f"{name}.yaml"
    (root / "qs_fit_image_word.yaml").write_text("fit: {image: sometimes}\n")
    kit["qs_fit_image_word_yaml"] = root / "qs_fit_image_word.yaml"

    # data sets: a good one, one with other categories, one of a single image, damaged copies
    kit["coco"] = write_coco(root / "coco")
    other = CocoWriter(root / "coco_other_categories", [{"id": 1, "name": "cat"}])
    other.add(np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16), np.int64))
    other.close()
    kit["coco_other_categories"] = root / "coco_other_categories"
    kit["coco_single"] = write_coco(root / "coco_single", n=1)
    for problem, damage in COCO_DAMAGE.items():
        kit[f"coco_{problem}"] = shutil.copytree(kit["coco"], root / f"coco_{problem}")
        damage(kit[f"coco_{problem}"])
    (root / "empty_dir").mkdir()
    (root / "nonempty").mkdir()
    (root / "nonempty" / "keep.txt").write_text("mine\n")
    (root / "a_file").write_text("not a folder\n")
    for name in ("empty_dir", "nonempty", "a_file"):
        kit[name] = root / name
    return kit
