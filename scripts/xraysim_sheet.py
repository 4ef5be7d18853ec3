"""Contact sheets of the X-ray simulator: docs/img/xraysim.png (256^2) and docs/img/xraysim_64.png (64^2, x3).

    .venv/bin/python scripts/xraysim_sheet.py [--outdir docs/img]

Tile k shows scan seed k rendered with one forced threat category (the paper's five twice, then six
others) and bag type (suitcase, soft bag, backpack in turn), the scan on the left and its threat mask
overlaid on the right.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from baggan.data.labelsets import PAPER_THREATS, PIDRAY
from baggan.data.xray.bag import BAG_TYPES
from baggan.data.xray.preview import contact_sheet
from baggan.data.xraysim import SimConfig, XRaySimulator
from baggan.io import write_bytes_atomic

CLASSES = list(PAPER_THREATS) * 2 + ["Gun", "Knife", "Scissors", "Sprayer", "Baton", "Lighter"]


def render_tiles(size: int) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """The 16 scans (image, label, caption) of the sheet at `size`."""
    images, labels, captions = [], [], []
    for k, name in enumerate(CLASSES):
        cfg = SimConfig(threat_rate=1.0, max_threats=1, threat_classes=(name,), bag_types=(BAG_TYPES[k % 3],))
        scan = XRaySimulator(cfg).render(k, size)
        images.append(scan.image)
        labels.append(scan.label)
        vis = ", ".join(f"{PIDRAY.names[i.category_id - 1]} v={v:.2f}" for i, v in zip(scan.instances, scan.visibility))
        captions.append(f"seed {k} {scan.meta['bag']}: {vis}")
    return images, labels, captions


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB image as a maximally compressed PNG, atomically."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok, path
    write_bytes_atomic(path, data.tobytes())


def main() -> None:
    """Write both sheets."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outdir", default="docs/img")
    args = ap.parse_args()
    out = Path(args.outdir)
    sheet = contact_sheet(*render_tiles(256))
    write_png(out / "xraysim.png", sheet)
    images, labels, captions = render_tiles(64)
    up = [cv2.resize(a, (192, 192), interpolation=cv2.INTER_NEAREST) for a in images]
    lab = [cv2.resize(a, (192, 192), interpolation=cv2.INTER_NEAREST) for a in labels]
    write_png(out / "xraysim_64.png", contact_sheet(up, lab, [c.split(":")[0] for c in captions]))
    print(f"wrote {out / 'xraysim.png'} and {out / 'xraysim_64.png'}")


if __name__ == "__main__":
    main()
