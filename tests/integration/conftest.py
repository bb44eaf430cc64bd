from tests.integration.workers import start_worker  # noqa: F401 - fixture
