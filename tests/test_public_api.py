"""The public API is pinned."""

import taskplane


def test_public_api_is_pinned() -> None:
    assert sorted(taskplane.__all__) == [
        "Call",
        "ConfigurationError",
        "DeadFilter",
        "DeadLetter",
        "DeadReason",
        "EmbeddedServer",
        "EmbeddedServerError",
        "IdempotencyConflictError",
        "InvalidRequestError",
        "NotFinishedError",
        "NotFoundError",
        "PayloadTooLargeError",
        "RateLimit",
        "RecordPage",
        "RedisUnavailableError",
        "Retry",
        "Settings",
        "TaskArgumentsError",
        "TaskFailedError",
        "TaskHandle",
        "TaskRecord",
        "TaskState",
        "Taskplane",
        "TaskplaneError",
        "UnknownTaskError",
        "__version__",
        "is_cancelled",
        "progress",
    ]


def test_the_http_api_package_exports_only_its_factory() -> None:
    import taskplane.api

    assert sorted(taskplane.api.__all__) == ["API_PREFIX", "create_app"]
    assert taskplane.api.API_PREFIX == "/api/v1"
