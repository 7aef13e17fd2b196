"""`tzurot up` keeps its services running: a service that exits is restarted with backoff.

The others keep serving meanwhile (a stream on a healthy service is not cut because another
died). Only a service that crashes `max_crashes` times within `window_seconds` stops the
mesh, with the reason: then something is wrong that restarting will not fix.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RestartPolicy:
    max_crashes: int = 4
    window_seconds: float = 60.0
    first_backoff: float = 0.5
    max_backoff: float = 8.0

    def backoff(self, crashes: int) -> float:
        """The pause before restarting after the `crashes`-th crash in the window."""
        return float(min(self.first_backoff * 2 ** max(crashes - 1, 0), self.max_backoff))


@dataclass
class CrashHistory:
    """When each service crashed recently."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    _times: dict[str, deque[float]] = field(default_factory=dict)

    def record(self, service: str, now: float) -> int:
        """Notes a crash at `now`; how many crashes of `service` the window now holds."""
        times = self._times.setdefault(service, deque())
        times.append(now)
        while times and now - times[0] > self.policy.window_seconds:
            times.popleft()
        return len(times)

    def gives_up(self, crashes: int) -> bool:
        return crashes >= self.policy.max_crashes
