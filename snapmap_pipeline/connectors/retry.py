"""Retry with exponential backoff for transient connector errors.

Only errors the caller marks as transient are retried; authentication and host-key failures never are,
since retrying them only locks accounts and hides an attack.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from snapmap_pipeline.logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")


class TransientError(Exception):
    """Internal marker: the operation may succeed if tried again (network cut, server restarting)."""

    def __init__(self, message: str, *, kind: str = "unavailable") -> None:
        super().__init__(message)
        self.kind = kind  # "unavailable" (could not reach the server) or "transfer" (cut mid-way)


def backoff_delays(attempts: int, base: float, cap: float = 10.0) -> list[float]:
    """Delays between `attempts` tries: base, 2·base, 4·base … capped, with ±20 % jitter.

    >>> len(backoff_delays(3, 0.5))
    2
    """
    # Jitter spreads reconnects from many sensors so a restarted server is not hit all at once.
    return [min(cap, base * 2**i) * random.uniform(0.8, 1.2) for i in range(max(0, attempts - 1))]


def with_retries(
    fn: Callable[[], T],
    *,
    attempts: int,
    backoff: float,
    what: str,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """Call `fn` until it succeeds, retrying only `TransientError`, at most `attempts` times.

    `on_retry` runs before each new try (e.g. to drop a broken connection). The last `TransientError`
    is re-raised for the caller to turn into a `SnapMapError` with advice.
    """
    delays = backoff_delays(attempts, backoff)
    for attempt in range(1, max(1, attempts) + 1):
        try:
            return fn()
        except TransientError as exc:
            if attempt >= attempts:
                raise
            delay = delays[attempt - 1]
            log.warning(
                "transient connector error, retrying",
                extra={
                    "fields": {
                        "op": what,
                        "attempt": attempt,
                        "of": attempts,
                        "delay_s": round(delay, 3),
                        "reason": str(exc),
                    }
                },
            )
            if on_retry is not None:
                on_retry()
            time.sleep(delay)
    raise AssertionError("unreachable")  # the loop either returns or raises
