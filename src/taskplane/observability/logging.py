"""Log lines that say which task wrote them; JSON lines when ``TASKPLANE_LOG_FORMAT=json``.

A handler filter stamps every record with the running task's id, name, queue and attempt (taken from a
context variable set while a task runs), so plain ``logging.getLogger(__name__)`` calls inside user
code carry them too, in the worker's main process and in every prefork child.
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

LogFormat = Literal["text", "json"]
TASK_FIELDS = ("task_id", "task_name", "queue", "attempt")


@dataclass(frozen=True)
class TaskLogContext:
    """The task attempt a log line was written in."""

    task_id: str
    task_name: str
    queue: str
    attempt: int


_task: ContextVar[TaskLogContext | None] = ContextVar("taskplane_log_task", default=None)


def enter_task(context: TaskLogContext) -> Any:
    """Mark the current context as running ``context``; returns the token for :func:`leave_task`."""
    return _task.set(context)


def leave_task(token: Any) -> None:
    """Undo :func:`enter_task`."""
    _task.reset(token)


class TaskContextFilter(logging.Filter):
    """Adds ``task_id``, ``task_name``, ``queue`` and ``attempt`` to records written inside a task."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Stamp the record (never drops one)."""
        context = _task.get()
        if context is not None:
            for name in TASK_FIELDS:
                setattr(record, name, getattr(context, name))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, process, task fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single-line JSON object."""
        data: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.processName,
            "pid": record.process,
        }
        for name in TASK_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str, ensure_ascii=False)


_TEXT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"


def configure(log_format: LogFormat, loggers: tuple[str, ...] = ("", "celery.task")) -> None:
    """Give every handler of ``loggers`` the task filter (and the JSON formatter when asked).

    Called where a process has set up its handlers: the worker after Celery configured logging (and
    again in each pool child), the other commands at start. A logger with no handler yet gets one
    on stderr.
    """
    for name in loggers:
        logger = logging.getLogger(name)
        if not logger.handlers and name == "":
            stderr = logging.StreamHandler()
            stderr.setFormatter(logging.Formatter(_TEXT))
            logger.addHandler(stderr)
            logger.setLevel(logging.INFO)
        for handler in logger.handlers:
            if not any(isinstance(existing, TaskContextFilter) for existing in handler.filters):
                handler.addFilter(TaskContextFilter())
            if log_format == "json" and not isinstance(handler.formatter, JsonFormatter):
                handler.setFormatter(JsonFormatter())
