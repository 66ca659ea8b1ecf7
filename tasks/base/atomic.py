"""Files written under a temporary name in their final folder and renamed when complete, so a
reader (or a rerun) never sees half a file. (No heavy imports: worker processes use it.)"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temp_path(path: Path) -> Path:
    """Hidden, per-process: a rerun's start sweeps `.*.tmp` left by a killed run."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """An OSError without a file name (a full disk seen by write(), or by Arrow) gets `path`:
    the one-line error of a failed run names the file, even from a worker process."""
    try:
        yield
    except OSError as exc:
        if exc.filename or exc.errno is None:
            raise
        raise OSError(exc.errno, os.strerror(exc.errno), str(path)) from exc


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(path)
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def copy_file_atomic(src: Path, dst: Path) -> None:
    with naming(dst):
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(dst)
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
