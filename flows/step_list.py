"""`sftforge steps`: every step and output format, one line each, from the registries."""

from __future__ import annotations


def print_steps() -> None:
    raise NotImplementedError("sftforge steps")
