"""docs/cli.md is generated from the click commands; it must match them."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current():
    r = subprocess.run([sys.executable, str(ROOT / "scripts/gen_cli_docs.py"), "--check"], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
