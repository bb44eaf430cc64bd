"""Dashboard page loads with 1,000,000 task records and 100,000 dead letters in Redis, in headless Chromium.

The records are written by a Lua loop inside the server (10,000 per call: a hash and its three index entries,
as a finished task leaves them), the dead letters likewise; then ``taskplane api`` serves the dashboard and
Chromium (Debian's, driven by Playwright) loads each page until its rows are on screen. Each figure is the
median of several loads, from navigation to the first row drawn, signed in.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import time
from typing import Any

from benchmarks.http_load import start_api
from taskplane.redis.keys import Keys

#: Writes ARGV[1] records (ids ARGV[2]..+n, created ARGV[3] ms minus one second each): record hash + indexes,
#: under the key names ARGV[4..7] (Keys.record, index_state, index_name for an empty id, state or name;
#: index_queue) of the queue normal.
SEED_RECORDS = """
local count, first, newest = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local record_of, state_index, name_index, queue_index = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
for i = first, first + count - 1 do
  local id = string.format('%08x-bench-4000-8000-%012d', i, i)
  local created = newest - i * 1000
  local name = (i % 1000 == 0) and 'bench.rare' or 'bench.noop'
  local state = (i % 50 == 0) and 'dead' or 'succeeded'
  redis.call('HSET', record_of .. id, 'name', name, 'queue', 'normal', 'state', state,
    'created_ms', created, 'updated_ms', created + 40, 'started_ms', created + 10, 'finished_ms', created + 40,
    'attempts', 1, 'worker', 'bench@host', 'version', 3, 'result', tostring(i), 'args', '[' .. i .. ']')
  redis.call('ZADD', state_index .. state, created, id)
  redis.call('ZADD', name_index .. name, created, id)
  redis.call('ZADD', queue_index, created, id)
end
return count
"""
#: Writes ARGV[1] dead letters of the queue normal under the key names ARGV[4..6] (Keys.dead_items,
#: dead_index, dead_queues).
SEED_DEAD = """
local count, first, newest = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local items, index, queues = ARGV[4], ARGV[5], ARGV[6]
for i = first, first + count - 1 do
  local id = string.format('%08x-dead-4000-8000-%012d', i, i)
  local failed = newest - i * 1000
  local envelope = cjson.encode({id = id, name = 'bench.noop', queue = 'normal', reason = 'retries_exhausted',
    args = {i}, kwargs = {}, exception_type = 'RuntimeError', exception_message = 'upstream refused ' .. i,
    traceback = 'Traceback (most recent call last):\\n  ...\\nRuntimeError: upstream refused', attempts = 4,
    first_failure_ms = failed - 900000, last_failure_ms = failed, worker = 'bench@host'})
  redis.call('HSET', items, id, envelope)
  redis.call('ZADD', index, failed, id)
end
redis.call('SADD', queues, 'normal')
return count
"""
CHUNK = 10_000
#: The pages loaded, each until the selector shows a row.
PAGES = {
    "overview": ("#/", "tr[data-queue='normal']"),
    "tasks": ("#/tasks", "tr[data-task]"),
    "tasks_rare_name": ("#/tasks?name=bench.rare", "tr[data-task]"),
    # No record matches: the search reads its budget (5,000 index entries) and offers to go on
    "tasks_no_match": ("#/tasks?state=succeeded&name=bench.rare", "#task-list p"),
    "dead_letters_last_page": ("#/dead-letters?queue=normal&offset=99950", "tr[data-letter]"),
}


def seed(client: Any, prefix: str, records: int, dead: int) -> dict[str, float]:
    """Write the records and dead letters; returns how long each took and the memory they use."""
    newest = int(time.time() * 1000)
    before = int(client.info("memory")["used_memory"])
    started = time.perf_counter()
    keys = Keys(prefix)
    record_names = [keys.record("normal", ""), keys.index_state("normal", ""), keys.index_name("normal", "")]
    for first in range(0, records, CHUNK):
        client.eval(
            SEED_RECORDS, 0, min(CHUNK, records - first), first, newest, *record_names, keys.index_queue("normal")
        )
    records_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for first in range(0, dead, CHUNK):
        dead_names = [keys.dead_items("normal.dead"), keys.dead_index("normal.dead"), keys.dead_queues()]
        client.eval(SEED_DEAD, 0, min(CHUNK, dead - first), first, newest, *dead_names)
    return {
        "records": records,
        "dead_letters": dead,
        "seed_records_s": records_seconds,
        "seed_dead_s": time.perf_counter() - started,
        "memory_mib": (int(client.info("memory")["used_memory"]) - before) / 2**20,
    }


def load_pages(base: str, token: str, repeats: int) -> dict[str, dict[str, float]]:
    """Median and worst load time (ms) of each page of :data:`PAGES`, signed in, in headless Chromium."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium: `make tools` installs Debian's chromium (as root)")
    figures: dict[str, dict[str, float]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{base}/")
            page.fill("#api-key", token)
            page.click("#sign-in button[type=submit]")
            page.wait_for_selector("#nav:not([hidden])")
            for name, (view, selector) in PAGES.items():
                times = []
                for _ in range(repeats + 1):  # the first load warms the server's caches: not counted
                    page.goto("about:blank")
                    started = time.perf_counter()
                    page.goto(f"{base}/{view}")
                    page.wait_for_selector(selector, state="attached")
                    times.append((time.perf_counter() - started) * 1000)
                figures[name] = {"median_ms": statistics.median(times[1:]), "max_ms": max(times[1:])}
                print(f"  {name}: {figures[name]['median_ms']:.0f} ms", flush=True)
        finally:
            browser.close()
    return figures


def measure(client: Any, env: dict[str, str], records: int = 1_000_000, dead: int = 100_000) -> dict[str, Any]:
    """Seed, serve, load each page; the server is emptied afterwards."""
    client.flushall()
    seeded = seed(client, "taskplane:", records, dead)
    print(f"  seeded {records:,} records and {dead:,} dead letters in {seeded['seed_records_s']:.0f} s", flush=True)
    api, port = start_api(env)
    try:
        os.environ.update(env)
        from benchmarks.bench_app import tp

        _, token = tp.api_keys.create("bench-dashboard", ["read"])
        pages = load_pages(f"http://127.0.0.1:{port}", token, repeats=5)
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(15)
        client.flushall()
    return {**seeded, "pages": pages}


if __name__ == "__main__":
    import argparse
    import tempfile

    import redis

    from taskplane.redis.embedded import EmbeddedServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--dead", type=int, default=100_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskplane-bench-") as data_dir:
        server = EmbeddedServer(data_dir)
        url = server.start().url
        try:
            env = {**os.environ, "TASKPLANE_REDIS_URL": url}
            result = measure(redis.Redis.from_url(url), env, options.records, options.dead)
            print(json.dumps(result, indent=2))
        finally:
            server.stop()
