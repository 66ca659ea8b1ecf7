"""The read stage's conversion: one input item -> records of the recipe's kind, or rejects.

Sources are read in recipe order, so "first occurrence" in later steps means recipe order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sftforge.schemas.recipe import InstructionMapping, SourceConfig
from sftforge.tasks.base.outcome import Rejected
from sftforge.tasks.readers.converters import code_contests, first_pair, guanaco_text
from sftforge.tasks.readers.mapping import MappingError, explode, to_instruction
from sftforge.tasks.readers.sharegpt import dumps, to_conversation
from sftforge.tasks.readers.sources import RawItem
from sftforge.tasks.steps import build_step

# The couplet set needs no mapping in a recipe: upper line -> instruction, lower -> output.
COUPLETS = InstructionMapping(instruction="{in|nospace}", output="{out|nospace}")

Outcome = tuple[dict[str, Any] | None, dict[str, Any] | None]  # (record, reject row)


def reject_row(record: dict[str, Any], rejected: Rejected, original: str) -> dict[str, Any]:
    return {
        "id": record.get("id"),
        "source": record.get("source", ""),
        "reason": rejected.reason,
        "detail": rejected.detail,
        "record": original,
    }


class _Original:
    """The input row as JSON text, made only if the row is rejected (most are not)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return dumps(self.value)


class SourceConverter:
    """Turns one source's raw items into records; holds that source's preprocess steps."""

    def __init__(self, source: SourceConfig) -> None:
        self.source = source
        self.dataset = source.dataset_name or source.name
        self.preprocess = [build_step(step) for step in source.preprocess]
        self.mapping = source.mapping or (COUPLETS if source.format == "couplets" else None)

    def __call__(self, item: RawItem) -> Iterator[Outcome]:
        source = self.source
        fallback_id = f"{source.name}/{item.where}"
        if item.error is not None:
            stub = {"id": fallback_id, "source": source.name}
            rejected = Rejected(item.reason, f"{item.where}: {item.error}")
            yield None, reject_row(stub, rejected, item.text or "")
            return
        original = _Original(item.value)
        if self.mapping is not None:
            yield from self._mapped(item, original)
            return
        if source.converter == "code_contests":
            result = code_contests(item.value, source.name, self.dataset, fallback_id)
        elif source.converter == "guanaco_text":
            result = guanaco_text(item.value, source.name, fallback_id)
        else:
            result = to_conversation(item.value, source.name, source.fields, fallback_id)
        if not isinstance(result, Rejected) and source.first_pair:
            result = self._first_pair(result)
        yield self._outcome(result, item, original, fallback_id)

    def _first_pair(self, record: dict[str, Any]) -> dict[str, Any] | Rejected:
        for step in self.preprocess:
            result = step(record)
            if isinstance(result, Rejected):
                return result
            record = result
        return first_pair(record, self.dataset)

    def _mapped(self, item: RawItem, original: _Original) -> Iterator[Outcome]:
        source = self.source
        base_id = f"{source.name}-{item.where.rsplit('#', 1)[-1].rsplit(':', 1)[-1]}"
        if not isinstance(item.value, dict):
            rejected = Rejected(
                "invalid_record", f"expected an object, got {type(item.value).__name__}"
            )
            yield self._outcome(rejected, item, original, base_id)
            return
        try:
            rows = list(explode(item.value, source.explode))
        except MappingError as exc:
            yield self._outcome(Rejected(exc.reason, exc.detail), item, original, base_id)
            return
        for suffix, row in rows:
            result = to_instruction(
                row,
                self.mapping,
                source.name,
                self.dataset,
                base_id + suffix,  # type: ignore[arg-type]
                source.meta_fields,
                suffix,
            )
            yield self._outcome(result, item, original, base_id + suffix)

    def _outcome(
        self,
        result: dict[str, Any] | Rejected,
        item: RawItem,
        original: _Original,
        fallback_id: str,
    ) -> Outcome:
        if not isinstance(result, Rejected):
            return result, None
        raw_id = None
        if isinstance(item.value, dict):
            raw_id = item.value.get(self.source.fields.id)
        stub = {
            "id": str(raw_id) if raw_id is not None else fallback_id,
            "source": self.source.name,
        }
        detail = Rejected(result.reason, f"{item.where}: {result.detail}")
        return None, reject_row(stub, detail, str(original))
