"""What every command leaves behind when it is interrupted, and the exit codes: shown under each command's
--help and in docs/cli.md (scripts/gen_cli_docs.py). A new command adds its line to AFTER_INTERRUPTION
(tests/test_bad_inputs.py checks that every command has one).

"Staged" outputs are written into a hidden folder beside the output (`.NAME.*.tmp` or `.NAME.*.partial`)
that is renamed into place when complete: Ctrl-C removes it; after kill -9 the next run of the command
removes it.
"""

from __future__ import annotations

import click

EXIT_CODES = (
    ("0", "success"),
    ("1", "an operating-system error: disk full, permission denied, a path that vanished; one line naming the file"),
    ("2", "bad input: a wrong option value, a missing or malformed file, a data set that fails a check; one line "
          "saying what is wrong (`baggan coco check`: one line per problem)"),
    ("130", "interrupted (Ctrl-C); see each command for what it leaves behind"),
)

_STAGED = "nothing: the output is staged in a hidden folder and renamed into place when complete"
_ATOMIC = "nothing: the output file is written under a temporary name and renamed when complete"

AFTER_INTERRUPTION = {
    "annotate": f"{_STAGED} (--outdir).",
    "coco check": "nothing (it writes no file).",
    "coco merge": f"{_STAGED} (--out).",
    "coco split": f"{_STAGED} (--out/train and --out/val, renamed together at the end).",
    "coco stats": f"{_ATOMIC} (stats.json, area_hist.png).",
    "coco view": f"{_ATOMIC}.",
    "evaluate downstream": "the finished training runs (downstream-runs.json); run the same command again to "
                           "continue the sweep.",
    "evaluate oneshot": "the finished units and cached projections in --outdir; run the same command again to "
                        "continue.",
    "evaluate threats": "the report files finished so far, each one whole (written under a temporary name), and "
                        "with --save-samples the finished sample folders (each staged); run the same command again "
                        "for the whole report.",
    "evaluate train-judge": f"{_ATOMIC} (--out and its .json).",
    "evaluate realism": "the report files finished so far, each one whole (written under a temporary name); "
                        "run the same command again for the whole report.",
    "generate": f"{_STAGED} (--outdir).",
    "hfc train": "config.yaml and the last checkpoint.pt (every checkpoint_every epochs); run the same command "
                 "again to continue from it.",
    "info": "nothing (it writes no file).",
    "oneshot fit": f"{_ATOMIC} (--out and its picture).",
    "label": "the masks saved and the files fitted so far in --workdir, each whole; start it again on the same "
             "--workdir to go on.",
    "prepare celebamask": f"{_STAGED} (--outdir).",
    "prepare debisim": f"{_STAGED} (--outdir).",
    "prepare pascal-part": f"{_STAGED} (--outdir).",
    "prepare pidray": f"{_STAGED} (--outdir).",
    "quickstart": "the finished stages in --outdir (run.json); run the same command again to finish.",
    "simulate": f"{_STAGED} (--outdir).",
    "synthesize": "the finished shards and index.json; run the same command again to finish (byte-identical to "
                  "an uninterrupted run). The shard being written is removed (after kill -9: by that run).",
    "train": "the snapshots taken so far and OUTDIR/config.yaml; `baggan train --resume auto --data DATA "
             "--outdir OUTDIR` continues (weights identical to an uninterrupted run), also when no snapshot "
             "was written yet; the temporary file of a snapshot cut off while written is removed when it resumes.",
}


def leaf_commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    """Every command below `group` that is not itself a group, by its path without the program name."""
    out = {}
    for name, cmd in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(cmd, click.Group):
            out.update(leaf_commands(cmd, path + " "))
        else:
            out[path] = cmd
    return out


def attach(group: click.Group) -> None:
    """Add the 'Interrupted:' line to the help of every command that has one."""
    for path, cmd in leaf_commands(group).items():
        if path in AFTER_INTERRUPTION:
            cmd.epilog = f"Interrupted (Ctrl-C, kill): leaves {AFTER_INTERRUPTION[path]}"
