"""`sftforge map OUT`: the vectors of a run's `embed` stage laid out (map_layout.py) and drawn
(map_page.py) as OUT/map.html."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from sftforge.schemas.loading import ConfigError
from sftforge.tasks.publish.map_data import NoVectors, load_map_data
from sftforge.tasks.publish.map_layout import lay_out
from sftforge.tasks.publish.map_page import write_map

log = logging.getLogger("sftforge.map")


def build_map(out: Path, stage: str | None, clusters: int, seed: int, text_chars: int) -> Path:
    """Write OUT/map.html; a run without vectors is a usage error (exit 2), one line."""
    if not out.is_dir():
        raise ConfigError(f"{out}: no such output directory")
    try:
        data = load_map_data(out, stage, text_chars)
    except NoVectors as exc:
        raise ConfigError(str(exc)) from None
    began = time.perf_counter()
    layout = lay_out(data.vectors, data.label_texts or data.texts, clusters, seed)
    log.info("map: %d points laid out in %.1f s", len(data.ids), time.perf_counter() - began)
    return write_map(out, data, layout, title=out.resolve().name)
