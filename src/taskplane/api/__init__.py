"""The HTTP API: ``create_app(tp)`` builds it (``taskplane api`` serves it)."""

from taskplane.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
