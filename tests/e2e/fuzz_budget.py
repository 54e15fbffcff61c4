"""A wall-clock budget for fuzzing: every operation gets its first example, the rest only
while the budget lasts, so `make test` stays bounded however slow the machine is."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable


class FuzzBudget:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.started: float | None = None
        self.sent: collections.Counter[str] = collections.Counter()
        self.saved = 0
        self._lock = threading.Lock()

    def admit(self, operation: str) -> bool:
        """Whether to send this example: always an operation's first, later ones in budget."""
        with self._lock:
            now = self.clock()
            if self.started is None:
                self.started = now
            if self.sent[operation] and now - self.started >= self.seconds:
                self.saved += 1
                return False
            self.sent[operation] += 1
            return True
