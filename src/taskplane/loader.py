"""Load a Taskplane app from ``module[:attr]``."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any

from taskplane.compat import pending_config
from taskplane.core.errors import ConfigurationError, TaskplaneError

if TYPE_CHECKING:
    from taskplane.app import Taskplane


def load_app(spec: str) -> Taskplane:
    """Import ``module[:attr]`` and return the Taskplane it names (``attr`` defaults to the only one), with
    the modules of its Celery ``include`` and ``imports`` settings imported (as ``celery worker`` does), so
    that tasks declared there are known.

    Raises:
        ConfigurationError: the module cannot be imported or holds no Taskplane.
    """
    from taskplane.app import Taskplane

    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import app module {module_name!r}: {exc}") from None
    except TaskplaneError as exc:  # a declaration refused: say where, in one line
        raise type(exc)(f"{_where(exc)}{exc}") from None
    if attr:
        value = getattr(module, attr, None)
        if not isinstance(value, Taskplane):
            raise ConfigurationError(f"{spec!r} is not a Taskplane instance")
        return _with_task_modules(value)
    found = [value for value in vars(module).values() if isinstance(value, Taskplane)]
    if len(found) != 1:
        raise ConfigurationError(
            f"module {module_name!r} holds {len(found)} Taskplane apps; name one as {module_name}:ATTR"
        )
    return _with_task_modules(found[0])


def _with_task_modules(app: Taskplane) -> Taskplane:
    celery: Any = app.celery  # Celery's pending configuration is not in its type stubs
    # Settings given before the app is configured wait in Celery's pending configuration: reading conf would
    # configure the app now (and start the embedded server when no Redis URL is set).
    conf: Any = pending_config(celery)
    for name in (*(conf.get("imports") or ()), *(conf.get("include") or ())):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigurationError(f"cannot import task module {name!r} (Celery include/imports): {exc}") from None
    return app


def _where(exc: BaseException) -> str:
    """``file:line: `` of the last frame outside taskplane that ``exc`` passed through (the user's line that
    declared what was refused), or ''."""
    package = os.path.dirname(os.path.abspath(__file__))
    found = ""
    for frame, line in traceback.walk_tb(exc.__traceback__):
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(package + os.sep) and not filename.startswith("<"):
            found = f"{os.path.relpath(filename)}:{line}: "
    return found
