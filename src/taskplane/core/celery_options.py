"""Celery's task options (``@app.task(max_retries=3, autoretry_for=..., retry_backoff=True)``) translated into
taskplane's: the retry options become one :class:`Retry` policy (failures past the last retry go to the dead
letters), options taskplane always applies are accepted when they agree, and options that make no sense
here are refused in one line naming what to write instead."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskplane.core.errors import ConfigurationError
from taskplane.core.policies import Retry, seconds

#: Celery's retry options, folded into one ``retry=Retry(...)``.
RETRY_OPTIONS = (
    "max_retries",
    "autoretry_for",
    "dont_autoretry_for",
    "retry_backoff",
    "retry_backoff_max",
    "retry_jitter",
    "default_retry_delay",
    "retry_kwargs",
)

#: Celery options passed on to the Celery task as they are (``typing=False`` also turns taskplane's argument
#: check off, as it does Celery's; ``base`` is a class of the team's that taskplane's task class goes under).
PASSED_OPTIONS = (
    "ignore_result",
    "expires",
    "priority",
    "typing",
    "base",
    "pydantic",
    "pydantic_strict",
    "pydantic_context",
    "pydantic_dump_kwargs",
)

#: Celery options taskplane has no use for, with what to write instead.
REFUSED: dict[str, str] = {
    "track_started": "remove it: the record always says started",
    "reject_on_worker_lost": "remove it: a delivery whose worker died runs again, up to the poison cap",
    "throws": "use retry=Retry(never_on=(...)) for errors that should not be retried",
    "store_errors_even_if_ignored": "remove it: the record keeps every error",
    "send_events": "remove it: task events are sent while someone listens (Flower)",
    "trail": "remove it",
    "resultrepr_maxsize": "remove it: the record keeps results up to its own limit",
    "request_stack": "remove it",
    "shadow_name": "remove it: the task's name is its name",
    "compression": "remove it: messages are JSON, uncompressed",
    "retry_policy": "remove it: publishing retries a lost connection by itself",
}

#: Celery's defaults for the retry options.
CELERY_MAX_RETRIES = 3
CELERY_RETRY_DELAY = 180.0
CELERY_BACKOFF_MAX = 600.0


def translate(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``@tp.task`` options into (taskplane's options, options for the Celery task itself).

    Celery's retry options become ``retry=Retry(...)`` and also set the Celery task's ``max_retries`` and
    ``default_retry_delay`` (what ``self.retry()`` obeys).

    Raises:
        ConfigurationError: an option that makes no sense here, a bad value, or ``retry=`` together with
            Celery's retry options.
    """
    ours = dict(options)
    celery: dict[str, Any] = {}
    for option, advice in REFUSED.items():
        if option in ours:
            raise ConfigurationError(f"task option {option!r} is not supported by taskplane: {advice}")
    _agreeing(ours, "acks_late", True, "taskplane always acknowledges a task after it ran (acks_late)")
    serializer = ours.pop("serializer", "json")
    if serializer != "json":
        raise ConfigurationError(
            f"serializer={serializer!r}: taskplane tasks are JSON only (pickle would let a message run code); "
            "remove the option"
        )
    for option in PASSED_OPTIONS:
        if option in ours:
            celery[option] = ours.pop(option)
    if isinstance(ours.get("rate_limit"), (int, float)) and not isinstance(ours["rate_limit"], bool):
        ours["rate_limit"] = f"{ours['rate_limit']}/s"  # Celery: a number is tasks per second
    given = {option: ours.pop(option) for option in RETRY_OPTIONS if option in ours}
    if given:
        if ours.get("retry") is not None:
            raise ConfigurationError(
                f"give either retry=Retry(...) or Celery's retry options ({', '.join(given)}), not both"
            )
        ours["retry"], celery_retry = retry_policy(given)
        celery.update(celery_retry)
    return ours, celery


def retry_policy(given: Mapping[str, Any]) -> tuple[Retry, dict[str, Any]]:
    """The :class:`Retry` equal to Celery's retry options, and the Celery task attributes they set.

    Without ``autoretry_for`` nothing is retried by itself (only ``self.retry()`` runs a task again).
    ``retry_backoff`` gives delays of factor * 2**n s capped at ``retry_backoff_max``; else every delay
    is ``default_retry_delay``. ``retry_jitter`` spreads each delay by up to ±10 %.

    Raises:
        ConfigurationError: a bad value.
    """
    extra = dict(given.get("retry_kwargs") or {})
    unknown = set(extra) - {"max_retries", "countdown"}
    if unknown:
        raise ConfigurationError(f"retry_kwargs: only max_retries and countdown are supported, not {sorted(unknown)}")
    max_retries = extra.get("max_retries", given.get("max_retries", CELERY_MAX_RETRIES))
    if max_retries is None:
        raise ConfigurationError("max_retries=None (retry forever) is not supported: give a number")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigurationError(f"max_retries={max_retries!r}: give a whole number >= 0")
    delay = extra.get("countdown", given.get("default_retry_delay", CELERY_RETRY_DELAY))
    delay = seconds("countdown" if "countdown" in extra else "default_retry_delay", delay) if delay else 0.0
    on = _exceptions("autoretry_for", given.get("autoretry_for", ()))
    never_on = _exceptions("dont_autoretry_for", given.get("dont_autoretry_for", ()))
    jitter = bool(given.get("retry_jitter", True))
    backoff = given.get("retry_backoff", False)
    if backoff:
        factor = 1.0 if backoff is True else seconds("retry_backoff", backoff)
        cap = seconds("retry_backoff_max", given.get("retry_backoff_max", CELERY_BACKOFF_MAX))
        delays = tuple(min(cap, factor * 2**step) for step in range(max(int(max_retries), 1)))
    else:
        delays = (delay,)
    policy = Retry(max_retries=int(max_retries), backoff=delays, jitter=jitter, on=on, never_on=never_on)
    return policy, {"max_retries": int(max_retries), "default_retry_delay": delay}


def _exceptions(option: str, value: Any) -> tuple[type[BaseException], ...]:
    kinds = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    for kind in kinds:
        if not (isinstance(kind, type) and issubclass(kind, BaseException)):
            raise ConfigurationError(f"{option}: {kind!r} is not an exception type")
    return kinds


def _agreeing(options: dict[str, Any], option: str, value: Any, why: str) -> None:
    if option in options and options.pop(option) != value:
        raise ConfigurationError(f"{option}={not value!r} is not supported: {why}; remove the option")
