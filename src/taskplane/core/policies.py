"""Task policies as value objects, validated on construction."""

from __future__ import annotations

import dataclasses
import difflib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from taskplane.core.errors import ConfigurationError

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d*)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def seconds(option: str, value: Any) -> float:
    """A positive duration given as seconds (a number) or a ``timedelta``, as a float.

    Raises:
        ConfigurationError: anything else, naming ``option`` and the value.
    """
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(
            f"{option}={value!r}: give a positive number of seconds (e.g. 600) or a datetime.timedelta"
        )
    return float(value)


def _known_options(cls: type, given: dict[str, Any]) -> None:
    """Refuse a keyword that is not a field of the policy ``cls``, with a "did you mean".

    Raises:
        ConfigurationError: names the option, the closest valid one and all valid ones.
    """
    valid = [item.name for item in dataclasses.fields(cls) if item.init]
    for option in given:
        if option not in valid:
            close = difflib.get_close_matches(option, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigurationError(
                f"{cls.__name__}({option}=...): unknown option{hint}; valid options: {', '.join(valid)}"
            )


@dataclass(frozen=True)
class Retry:
    """When and how often a failed task runs again.

    ``backoff`` lists the delays in seconds before retry 1, 2, ...; the last one repeats.
    ``jitter`` spreads each delay by up to ±10% (True) or by the given fraction (a float).
    ``on`` lists the exception types that are retried; ``never_on`` those that never are (they go
    straight to the dead letters). ``never_on`` wins when both match.
    """

    max_retries: int = 3
    backoff: tuple[float, ...] = (60.0, 300.0, 900.0)
    jitter: bool | float = True
    on: tuple[type[BaseException], ...] = (Exception,)
    never_on: tuple[type[BaseException], ...] = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Retry:
        _known_options(cls, kwargs)
        return super().__new__(cls)

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigurationError(f"Retry(max_retries={self.max_retries!r}): give a whole number >= 0")
        backoff = (self.backoff,) if isinstance(self.backoff, (int, float, timedelta)) else self.backoff
        if not isinstance(backoff, (list, tuple)) or not backoff:
            raise ConfigurationError(f"Retry(backoff={self.backoff!r}): give one or more delays in seconds")
        delays = []
        for delay in backoff:
            if isinstance(delay, timedelta):
                delay = delay.total_seconds()
            if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
                raise ConfigurationError(f"Retry(backoff={self.backoff!r}): {delay!r} is not a delay in seconds >= 0")
            delays.append(float(delay))
        object.__setattr__(self, "backoff", tuple(delays))
        if not isinstance(self.jitter, (bool, int, float)) or not 0 <= self.jitter_fraction < 1:
            raise ConfigurationError(f"Retry(jitter={self.jitter!r}): give True, False or a fraction in [0, 1)")
        for option in ("on", "never_on"):
            kinds = getattr(self, option)
            kinds = tuple(kinds) if isinstance(kinds, (list, tuple)) else (kinds,)
            for kind in kinds:
                if not (isinstance(kind, type) and issubclass(kind, BaseException)):
                    raise ConfigurationError(f"Retry({option}=...): {kind!r} is not an exception type")
            object.__setattr__(self, option, kinds)

    @classmethod
    def exponential(
        cls,
        max_retries: int = 5,
        first: float = 1.0,
        factor: float = 2.0,
        cap: float = 600.0,
        jitter: bool | float = True,
        on: tuple[type[BaseException], ...] = (Exception,),
        never_on: tuple[type[BaseException], ...] = (),
    ) -> Retry:
        """Delays ``first, first*factor, first*factor**2, ...`` capped at ``cap``."""
        if first <= 0 or factor < 1 or cap < first:
            raise ConfigurationError("Retry.exponential: need first > 0, factor >= 1 and cap >= first")
        delays = tuple(min(cap, first * factor**step) for step in range(max(max_retries, 1)))
        return cls(max_retries=max_retries, backoff=delays, jitter=jitter, on=on, never_on=never_on)

    @property
    def jitter_fraction(self) -> float:
        """The jitter as a fraction of the delay."""
        if isinstance(self.jitter, bool):
            return 0.1 if self.jitter else 0.0
        return float(self.jitter)

    def retries_on(self, exc: BaseException) -> bool:
        """True if ``exc`` is of a type this policy retries."""
        if isinstance(exc, self.never_on):
            return False
        return isinstance(exc, self.on)

    def delay(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based), jitter applied."""
        base = self.backoff[min(retry_number, len(self.backoff)) - 1]
        fraction = self.jitter_fraction
        if fraction == 0:
            return base
        spread = (rng or random).uniform(-fraction, fraction)
        return max(0.0, base * (1 + spread))


@dataclass(frozen=True)
class RateLimit:
    """A cluster-wide limit: ``rate`` like ``"30/m"`` or ``"10/s"``, optionally per key.

    ``key`` receives the task's arguments and returns the bucket name (per tenant, per host...).
    """

    rate: str
    key: Callable[..., Any] | None = field(default=None, compare=False)
    burst: int = 1
    interval: float = field(init=False, default=0.0)

    def __new__(cls, *args: Any, **kwargs: Any) -> RateLimit:
        _known_options(cls, kwargs)
        return super().__new__(cls)

    def __post_init__(self) -> None:
        if not isinstance(self.rate, str):
            raise ConfigurationError(f"RateLimit(rate={self.rate!r}): give a rate like '30/m'")
        match = _RATE.match(self.rate)
        if not match:
            raise ConfigurationError(f"bad rate limit {self.rate!r}: use N/s, N/m, N/h or N/d, e.g. '30/m'")
        count = float(match.group(1))
        period = float(match.group(2) or 1) * _UNIT_SECONDS[match.group(3)]
        if count <= 0:
            raise ConfigurationError(f"bad rate limit {self.rate!r}: use a positive N in N/s, N/m, N/h or N/d")
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ConfigurationError(f"RateLimit(burst={self.burst!r}): give a whole number >= 1")
        if self.key is not None and not callable(self.key):
            raise ConfigurationError(f"RateLimit(key={self.key!r}): give a function of the task's arguments")
        object.__setattr__(self, "interval", period / count)

    def bucket(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The bucket these arguments fall into ('' when the limit is not keyed)."""
        if self.key is None:
            return ""
        return str(self.key(*args, **kwargs))
