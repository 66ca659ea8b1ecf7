"""What tests of the `sftforge` command share: how a refusal must look."""

from __future__ import annotations

import subprocess


def one_line(result: subprocess.CompletedProcess, code: int) -> str:
    """The command exited with `code` and said why in one `sftforge:` line, no traceback."""
    assert result.returncode == code, f"{result.returncode}\n{result.stdout}\n{result.stderr}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sftforge: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]
