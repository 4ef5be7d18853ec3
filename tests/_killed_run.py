"""Run `baggan ARGS` in this process and kill -9 it inside the N-th snapshot write, after FRACTION of the
snapshot's bytes reached its temporary file (0: a kill just before the first byte).

    python tests/_killed_run.py N FRACTION train --config ... --data ... --outdir ...

Under torchrun only rank 0 writes snapshots, so only it dies; torchrun then stops the other ranks.
"""

import io
import os
import signal
import sys
from pathlib import Path

import torch

import baggan.stylegan2.checkpoint as checkpoint
from baggan.cli import main
from baggan.io import atomic_path

AT, FRACTION = int(sys.argv[1]), float(sys.argv[2])
calls = 0


def dying_save(path, obj):
    """save_torch_atomic that kills this process mid-write at the N-th snapshot."""
    global calls
    if Path(path).name.startswith("snapshot-"):
        calls += 1
        if calls == AT:
            buf = io.BytesIO()
            torch.save(obj, buf)
            data = buf.getvalue()
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                f.write(data[: int(len(data) * FRACTION)])
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
    real_save(path, obj)


real_save = checkpoint.save_torch_atomic
checkpoint.save_torch_atomic = dying_save
sys.argv = ["baggan", *sys.argv[3:]]
main()
