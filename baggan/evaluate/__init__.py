"""Evaluation harness: the paper's protocols, each writing a report folder (Markdown + JSON + PNG).

    downstream  a segmenter (DeepLabV3 / SDANet) trained on real + synthetic scans, tested on real (Table 3)
    realism     FID / KID, intensity histograms, material classes and a collage across sets of scans
    report      report-folder helpers shared by every protocol
"""

from __future__ import annotations


def resolve_device(name: str = "auto"):
    """'auto' → CUDA when available, else CPU; any other name is passed to torch.device (UserError if invalid)."""
    import torch

    from baggan.errors import UserError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise UserError(f"--device {name!r}: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name!r}: CUDA is not available on this machine")
    return device
