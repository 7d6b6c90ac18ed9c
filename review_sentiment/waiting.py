"""One poll-until-deadline loop for servers starting, processes exiting and files expiring."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout_s: float, interval_s: float = 0.5) -> T:
    """Call `condition` every `interval_s` seconds until it returns something truthy, and return
    that; after `timeout_s` seconds return its last (falsy) answer, so each caller raises or
    asserts in its own words. It is always asked once more after the deadline has passed, so a
    slow check cannot lose the last look."""
    deadline = time.monotonic() + timeout_s
    while True:
        late = time.monotonic() > deadline
        if (answer := condition()) or late:
            return answer
        time.sleep(interval_s)
