"""Every pipeline step, one module each (a package for augment).

A step module holds its options class — a `StepBase` subclass on one of the three bases of
`tasks/base/step_protocol.py`, registered with `@register_step` — and its logic. Every module
of this package is imported when the registry is first read (schemas/steps.py), so adding a
step is adding its module.
"""
