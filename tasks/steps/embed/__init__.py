"""The embed step (tasks/steps/embed/step.py): vectors per record from an embeddings API,
sent through the augment step's journaled, rate-limited client (calls.py), kept beside the
data (vectors.py)."""

from __future__ import annotations

from sftforge.tasks.steps.embed.step import EmbedStep

__all__ = ["EmbedStep"]
