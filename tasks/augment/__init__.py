"""SelFee's answer -> feedback -> revision augmentation over an OpenAI-compatible API.

One concern per module: `presets` (prompts, stop rule), `postprocess`, `tokens` (counting and
truncation), `rate_limit`, `retry`, `budget`, `journal`, `client`, `processor` (sending calls),
`loop` (one record's chain) and `runner` (the entry point).
"""

from tasks.augment.runner import AugmentInterrupted, augment_records

__all__ = ["AugmentInterrupted", "augment_records"]
