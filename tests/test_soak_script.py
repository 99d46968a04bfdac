"""tools/soak.py stays working: a short run (200 calls from 4 threads) passes its own
checks (no error, the serial results bit for bit, bounded RSS growth)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[1] / "tools" / "soak.py"


def test_soak_quick_mode(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SOAK), "--calls", "200", "--threads", "4"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("soak: 200 calls of ") and "from 4 threads" in lines[0]
    assert ": 0 mismatching calls" in proc.stdout and "errors 0;" in proc.stdout
    assert lines[-1] == "soak: OK"
