"""The card's features YAML is `datasets`' own, for every schema sftforge writes and every
type mapped without `datasets` (tasks/publish/hf_features.py)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from datasets import Features

from sftforge.schemas.records import REJECT_SCHEMA, SCHEMAS
from sftforge.tasks.publish.hf_features import _PRIMITIVE, features_yaml


def reference(schema: pa.Schema) -> list[dict]:
    return Features.from_arrow_schema(schema)._to_yaml_list()


@pytest.mark.parametrize("name", [*SCHEMAS, "rejects"])
def test_every_record_schema_matches_datasets(name: str) -> None:
    schema = SCHEMAS.get(name, REJECT_SCHEMA)
    assert features_yaml(schema) == reference(schema)


@pytest.mark.parametrize("arrow_type", list(_PRIMITIVE), ids=str)
def test_each_mapped_type_alone_in_a_list_and_in_a_struct(arrow_type: pa.DataType) -> None:
    schema = pa.schema(
        [
            ("value", arrow_type),
            ("values", pa.list_(arrow_type)),
            ("record", pa.struct([("inner", arrow_type), ("more", pa.list_(arrow_type))])),
            ("records", pa.list_(pa.struct([("inner", arrow_type)]))),
        ]
    )
    assert features_yaml(schema) == reference(schema)


@pytest.mark.parametrize(
    "arrow_type",
    [
        pa.list_(pa.list_(pa.int32())),
        pa.large_list(pa.string()),
        pa.list_(pa.int64(), 4),
        pa.timestamp("s"),
        pa.dictionary(pa.int32(), pa.string()),
    ],
    ids=str,
)
def test_types_left_to_datasets_still_come_out_as_datasets_writes_them(
    arrow_type: pa.DataType,
) -> None:
    schema = pa.schema([("id", pa.string()), ("x", arrow_type)])
    assert features_yaml(schema) == reference(schema)
