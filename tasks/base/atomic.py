"""Files written under a temporary name in their final folder and renamed when complete, so a
reader (or a rerun) never sees half a file. (No heavy imports: worker processes use it.)"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def temp_path(path: Path) -> Path:
    """Hidden, per-process: a rerun's start sweeps `.*.tmp` left by a killed run."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def copy_file_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(dst)
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
