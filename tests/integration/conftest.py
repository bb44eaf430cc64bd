from tests.integration.api_server import api_url  # noqa: F401 - fixture
from tests.integration.workers import start_worker  # noqa: F401 - fixture
