"""Weights.values is spelled out for speed: it must stay every field, in field order."""

from __future__ import annotations

import dataclasses

from tzurot.memory.scoring import Weights


def test_values_are_every_field_in_order() -> None:
    names = [f.name for f in dataclasses.fields(Weights)]
    weights = Weights(*(float(i + 1) for i in range(len(names))))
    assert weights.values() == tuple(getattr(weights, name) for name in names)
