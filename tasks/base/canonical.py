"""Canonical JSON text for storage: stable key order, UTF-8 kept as is, anything else as str."""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
