"""torch.load(weights_only=True) with a one-line reason when a file is refused or unreadable.

A file that asks to import anything beyond tensors and plain data is refused and the line names what it
asked for; it never repeats torch's advice to load it with weights_only=False (that would run its code).
"""

from __future__ import annotations

import os
import re
from typing import Any

import torch


def load_failure(e: BaseException) -> str:
    """Why torch.load(weights_only=True) failed, in one line: the refused import, or the error's first sentence."""
    refused = re.search(r"GLOBAL ([\w.]+)", str(e))
    if refused:
        return (f"refused: it asks to import {refused.group(1)}, and only tensors and plain data are loaded from "
                "files (a pickle can run code)")
    return f"not a readable torch file ({first_sentence(e)})"


def first_sentence(e: BaseException) -> str:
    """'ErrorType: the first sentence of its message' (torch's and pickle's messages run over many lines; of
    torch's weights-only failures, the unpickler's own reason)."""
    text = str(e)
    text = text.split("WeightsUnpickler error:", 1)[1] if "WeightsUnpickler error:" in text else text
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0].split(". ")[0].rstrip(".") if lines else ""
    return f"{type(e).__name__}{': ' + first if first else ''}"


def load_weights_only(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """torch.load(path, weights_only=True); a ValueError with the one-line reason (`load_failure`) if it fails."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is the file's fault
        raise ValueError(load_failure(e)) from None
