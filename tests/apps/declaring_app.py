"""One task per way of declaring it (``@tp.task``, ``@tp.celery.task``, ``@shared_task``), each with and without
``bind=True``: every one must enqueue and run the same way from Python, the CLI and the HTTP API."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from taskplane import Taskplane

tp = Taskplane("declaring")


@tp.task(name="d.tp_plain")
def tp_plain(a: int, b: int = 1) -> list[Any]:
    return [a + b, False]


@tp.task(name="d.tp_bound", bind=True)
def tp_bound(self: Task[Any, Any], a: int, b: int = 1) -> list[Any]:
    return [a + b, isinstance(self, Task) and self.request.id is not None]


@tp.celery.task(name="d.celery_plain")
def celery_plain(a: int, b: int = 1) -> list[Any]:
    return [a + b, False]


@tp.celery.task(name="d.celery_bound", bind=True)
def celery_bound(self: Task[Any, Any], a: int, b: int = 1) -> list[Any]:
    return [a + b, isinstance(self, Task) and self.request.id is not None]


@shared_task(name="d.shared_plain")
def shared_plain(a: int, b: int = 1) -> list[Any]:
    return [a + b, False]


@shared_task(name="d.shared_bound", bind=True)
def shared_bound(self: Task[Any, Any], a: int, b: int = 1) -> list[Any]:
    return [a + b, isinstance(self, Task) and self.request.id is not None]


TASKS = {
    "d.tp_plain": False,
    "d.tp_bound": True,
    "d.celery_plain": False,
    "d.celery_bound": True,
    "d.shared_plain": False,
    "d.shared_bound": True,
}
