"""The dataset card's `dataset_info.features`: `datasets`' YAML form of an Arrow schema.

`datasets.Features.from_arrow_schema(schema)._to_yaml_list()` is the reference, and the
fallback for any type not mapped here. Importing `datasets` took about 1 s of every run's
flow (after Prefect, pandas already loaded) for the card alone, so the types sftforge's
outputs use are mapped here directly; `tests/test_hf_features.py` checks the two agree on
every record schema sftforge writes and on every type in `_PRIMITIVE`.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

# Arrow primitive → the dtype name `datasets` writes (its `Value` names).
_PRIMITIVE: dict[pa.DataType, str] = {
    pa.string(): "string",
    pa.large_string(): "large_string",
    pa.bool_(): "bool",
    **{t: str(t) for t in (pa.int8(), pa.int16(), pa.int32(), pa.int64())},
    **{t: str(t) for t in (pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64())},
    pa.float16(): "float16",
    pa.float32(): "float32",
    pa.float64(): "float64",
    pa.binary(): "binary",
    pa.large_binary(): "large_binary",
}


class _Unmapped(Exception):
    """A type this module leaves to `datasets`."""


def _entry(arrow_type: pa.DataType) -> tuple[str, Any]:
    """The key and value a field of this type has in `datasets`' YAML list."""
    if arrow_type in _PRIMITIVE:
        return "dtype", _PRIMITIVE[arrow_type]
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        key, value = _entry(arrow_type.value_type)
        if key not in ("dtype", "struct") or pa.types.is_large_list(arrow_type):
            raise _Unmapped(arrow_type)  # nested lists, large lists: `datasets` decides
        return "list", value
    if pa.types.is_struct(arrow_type):
        return "struct", [_field(arrow_type.field(i)) for i in range(arrow_type.num_fields)]
    raise _Unmapped(arrow_type)


def _field(field: pa.Field) -> dict[str, Any]:
    key, value = _entry(field.type)
    return {"name": field.name, key: value}


def features_yaml(schema: pa.Schema) -> list[dict[str, Any]]:
    """`schema`'s features as the card's YAML list, as `datasets` writes them."""
    try:
        return [_field(field) for field in schema]
    except _Unmapped:
        from datasets import Features

        return Features.from_arrow_schema(schema)._to_yaml_list()
