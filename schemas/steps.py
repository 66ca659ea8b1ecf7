"""The schema side of the step protocol: the base of every step's options, and the registry.

A step is declared in a recipe as a mapping with a `step` key naming it and its options
beside it::

    - step: filter_language
      languages: [en]
      min_score: 0.5

Each step is one module in `tasks/steps/` holding its options class (a `StepBase`
subclass registered with `@register_step`) and its logic. The recipe's discriminated union
of steps (`StepConfig`), the step list in error messages and everything the planner needs to
know about a step are derived from this registry. Built-in steps are found by importing
the package named in `STEP_PACKAGES` the first time the registry is read — by name, so that
`schemas` never imports `tasks` — and a recipe may name more modules under `plugins:`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Annotated, Any, ClassVar, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler
from pydantic_core import CoreSchema

CONVERSATION = ("conversation",)
INSTRUCTION = ("instruction", "augmented")
ANY_KIND = CONVERSATION + INSTRUCTION

# Packages whose every module is imported to register the built-in steps.
STEP_PACKAGES: tuple[str, ...] = ("sftforge.tasks.steps",)


class StepBase(BaseModel):
    """Options of one step. Traits the engine plans with are class variables."""

    model_config = ConfigDict(extra="forbid")

    # The record kinds a step accepts; it puts out the same kind unless `output_kind` says
    # otherwise.
    kinds: ClassVar[tuple[str, ...]] = ANY_KIND
    # For a step that keeps a record unchanged or rejects it: the fields it reads, so a run of
    # such steps reads only those columns of a shard. None: it needs whole records.
    reads: ClassVar[tuple[str, ...] | None] = None
    # It rewrites message text (the run report compares lengths before and after it).
    converts_text: ClassVar[bool] = False

    # Stage name (output folder, manifest entry). Defaults to the step type; set it when
    # a recipe uses the same step twice.
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_\-]+$")

    @property
    def stage(self) -> str:
        return self.name or self.step  # type: ignore[attr-defined]

    def output_kind(self, input_kind: str) -> str:
        return input_kind

    def required_extras(self) -> dict[str, tuple[str, str]]:
        """Optional modules the step will import, as {module: (extra, what needs it)}:
        checked before a run starts, so a missing extra is one line, not a failed stage."""
        return {}

    def required_files(self) -> dict[str, str]:
        """Files the step reads, by option name: checked before a run starts, so that it never
        starts only to fail on its first record."""
        return {}


S = TypeVar("S", bound=type[StepBase])

_registry: dict[str, type[StepBase]] = {}
_loaded: set[str] = set()
# Models whose schema holds the union of steps: rebuilt when a step registers late.
_dependents: list[type[BaseModel]] = []


def step_type(cls: type[StepBase]) -> str:
    """The `step:` value of a step class (its `step: Literal["..."]` field)."""
    field = cls.model_fields.get("step")
    args = getattr(field.annotation, "__args__", ()) if field is not None else ()
    if len(args) != 1 or not isinstance(args[0], str):
        raise TypeError(f"{cls.__name__} needs a field `step: Literal['<name>']`")
    return args[0]


def register_step(cls: S) -> S:
    """Class decorator: make a step usable in recipes under its `step:` name."""
    name = step_type(cls)
    known = _registry.get(name)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ValueError(
            f"step {name!r} is registered twice ({known.__module__}, {cls.__module__})"
        )
    _registry[name] = cls
    for model in _dependents:
        if model.__pydantic_complete__:
            model.model_rebuild(force=True)
    return cls


def load_step_modules(modules: list[str] | tuple[str, ...]) -> None:
    """Import modules (or every module of a package) so that their steps register."""
    for name in modules:
        if name in _loaded:
            continue
        module = importlib.import_module(name)
        for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
            importlib.import_module(f"{name}.{info.name}")
        _loaded.add(name)  # after: a module that failed to import is tried again


def registered_steps() -> dict[str, type[StepBase]]:
    """Every registered step class by its `step:` name, built-in ones first."""
    load_step_modules(STEP_PACKAGES)
    return dict(_registry)


def step_class(name: str) -> type[StepBase] | None:
    return registered_steps().get(name)


def rebuild_with_steps(*models: type[BaseModel]) -> None:
    """Declare models whose schema holds `StepConfig` (rebuilt when a plugin registers)."""
    _dependents.extend(models)


class _StepUnion:
    """Pydantic hook: the discriminated union of the steps registered when the schema is built."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        classes = tuple(registered_steps().values())
        return handler.generate_schema(
            Annotated[Union[classes], Field(discriminator="step")]  # noqa: UP007 (a runtime tuple)
        )


StepConfig = Annotated[StepBase, _StepUnion]
