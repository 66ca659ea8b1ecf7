"""`sftforge demo DIR`: the shipped recipes and sample data, copied out of the package.

The recipes name their inputs relative to the directory they run from (`data/...`, and
`data/tokenizer` for token files), as they do in a checkout of the repository. An installed
wheel carries `configs/` and `data/` as `sftforge/configs` and `sftforge/data`; copying them
into DIR makes DIR look like the repository's root, so `sftforge run configs/demo.yaml` run
there reads the same files and writes the same outputs as in the repository.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sftforge.schemas.loading import ConfigError

DEMO_RECIPES = ("configs/demo.yaml", "configs/demo_selfee.yaml")


def shipped_root() -> Path:
    """The folder holding `configs/` and `data/`: the installed package, or the checkout."""
    # Installed: sftforge/flows/ beside sftforge/configs/; a checkout: flows/ beside configs/.
    root = Path(__file__).resolve().parent.parent
    if (root / "configs" / "demo.yaml").is_file() and (root / "data").is_dir():
        return root
    raise ConfigError(f"{root}: the shipped recipes (configs/, data/) are not installed")


def _shipped(path: Path) -> bool:
    # data/ also holds the scripts that make the samples; the copy gets only what recipes read.
    return path.suffix not in {".py", ".pyc"} and not any(
        part.startswith((".", "__")) for part in path.parts
    )


def copy_demo(dest: Path) -> list[Path]:
    """Copy configs/*.yaml and the sample data into `dest`; files already there are kept.

    Keeping them lets a user edit a copied recipe and rerun, and a rerun resume. Returns the
    files copied.
    """
    root = shipped_root()
    copied = []
    for folder in ("configs", "data"):
        for source in sorted((root / folder).rglob("*")):
            relative = source.relative_to(root)
            if not _shipped(relative) or not source.is_file():
                continue
            target = dest / relative
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            copied.append(target)
    return copied
