"""Words both artifact contracts use: the hard-negative types (SugarCrepe's seven plus relation reversal),
in the order kgaug generates them and the shard contract numbers them (`neg_type` indices in training)."""

from __future__ import annotations

NEGATIVE_TYPES: tuple[str, ...] = (
    "replace_obj",
    "replace_att",
    "replace_rel",
    "swap_obj",
    "swap_att",
    "add_obj",
    "add_att",
    "reverse_rel",
)
