"""Every knob of long-term memory in one value (`LongTermMemory.tuning`): the benchmarks
swap it to compare settings, and the service sets its weights from configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from tzurot.memory import scoring


@dataclass(frozen=True)
class Tuning:
    """Every knob of long-term memory; the defaults are OpenMemory's unless noted."""

    weights: scoring.Weights = field(default_factory=scoring.Weights)
    candidates: int = 60
    """Candidates per source (vector, full text) before hybrid scoring."""
    initial_salience: float = 0.5
    use_boost: float = 0.1
    """Salience step of a memory used in a delivered answer that was kept."""
    merge_similarity: float = 0.92
    """A new memory this close (cosine) to one of its scope merges into it."""
    link_similarity: float = 0.75
    link_weight: float = 0.5
    expansion_below: float = 0.55
    seeds: int = 3
    prune_below: float = 0.05
    waypoint_fade_per_day: float = 0.01
    reflection_similarity: float = 0.8
    reflection_min_memories: int = 20
    reflection_min_cluster: int = 3
    reflection_max_chars: int = 400
    min_formation_chars: int = 12
    use_grace: timedelta = timedelta(minutes=10)
    """A used memory is reinforced once its answer stood this long (not deleted/regenerated)."""
