"""The files in deploy/ are checked by the tools that can check them without a Docker engine or a cluster:
the Compose specification's JSON schema, promtool (Debian's prometheus package, installed by `make test`),
and Kubernetes' OpenAPI schemas. The metric names they query must be names taskplane exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from taskplane.stores.metrics import COUNTERS, HISTOGRAMS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S_VERSION = "1.30.0"
GAUGES = {
    "celery_queue_length",
    "celery_worker_up",
    "celery_worker_tasks_active",
    "taskplane_dead_letters",
    "taskplane_delayed",
    "taskplane_scheduler_leader",
    "taskplane_schedule_last_run_timestamp",
    "taskplane_redis_up",
}
PROMQL_WORDS = {"sum", "by", "rate", "delta", "max", "and", "or", "time", "histogram_quantile", "clamp_min", "up"}


def exported_names() -> set[str]:
    names = set(GAUGES) | set(COUNTERS)
    for histogram in HISTOGRAMS:
        names |= {f"{histogram}_bucket", f"{histogram}_sum", f"{histogram}_count"}
    return names


def metric_names(expr: str) -> set[str]:
    """Metric-looking identifiers of a PromQL expression (label names inside {} and by () are left out)."""
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r'"[^"]*"', "", expr)
    return {word for word in re.findall(r"[a-z_][a-z0-9_]*", expr) if "_" in word and word not in PROMQL_WORDS}


def promtool() -> str:
    found = shutil.which("promtool") or (Path("/usr/bin/promtool").exists() and "/usr/bin/promtool")
    if not found:
        pytest.fail("promtool not found: install Debian's prometheus package (`make test` does this as root)")
    return str(found)


def test_compose_file_matches_the_compose_specification() -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "docker-compose.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_runs_every_role_with_redis_persistence() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "api", "worker-interactive", "worker-batch", "scheduler", "flower", "prometheus"} <= set(services)
    redis_command = services["redis"]["command"]
    assert redis_command[redis_command.index("--appendonly") + 1] == "yes"
    assert services["scheduler"]["deploy"]["replicas"] == 2
    timeout = int(compose["x-taskplane"]["environment"]["TASKPLANE_SHUTDOWN_TIMEOUT"])
    for name in ("worker-interactive", "worker-batch"):
        grace = int(services[name]["stop_grace_period"].rstrip("s"))
        assert grace > timeout, f"{name}: stop_grace_period {grace}s must exceed the {timeout}s shutdown timeout"


def test_prometheus_config_and_alert_rules_pass_promtool() -> None:
    tool = promtool()
    config = DEPLOY / "prometheus" / "prometheus.yml"
    result = subprocess.run([tool, "check", "config", str(config)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(
        [tool, "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_alert_rules_cover_the_operators_failure_modes_with_exported_metrics() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"][0]["rules"]
    by_name = {rule["alert"]: rule["expr"] for rule in rules}
    assert {
        "TaskplaneTaskFailureRateHigh",
        "TaskplaneQueueBacklog",
        "TaskplaneDeadLettersGrowing",
        "TaskplaneWorkerDown",
        "TaskplaneNoSchedulerLeader",
    } <= set(by_name)
    for alert, expr in by_name.items():
        unknown = metric_names(expr) - exported_names()
        assert not unknown, f"{alert} queries metrics taskplane does not export: {unknown}"


def test_grafana_dashboard_queries_only_exported_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "taskplane-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 10
    used: set[str] = set()
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        used |= names
    assert not used - exported_names(), used - exported_names()
    # every family taskplane exports is on the dashboard, in one form or another
    assert {name.removesuffix("_bucket") for name in used} >= set(HISTOGRAMS)
    assert used >= set(COUNTERS) | GAUGES - {"taskplane_redis_up"}


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((f"{path.name}:{document['kind']}/{document['metadata']['name']}", document))
    return found


@pytest.mark.parametrize("where,document", k8s_documents(), ids=[where for where, _ in k8s_documents()])
def test_kubernetes_manifest_matches_the_openapi_schema(where: str, document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_kubernetes_workers_get_time_to_drain_and_schedulers_run_twice() -> None:
    documents = dict(k8s_documents())
    config = documents["config.yaml:ConfigMap/taskplane-config"]["data"]
    timeout = int(config["TASKPLANE_SHUTDOWN_TIMEOUT"])
    workers = [doc for where, doc in documents.items() if "worker" in where]
    assert len(workers) == 2
    for worker in workers:
        pod = worker["spec"]["template"]["spec"]
        container = pod["containers"][0]
        pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert pod["terminationGracePeriodSeconds"] >= pause + timeout + 5
        assert "livenessProbe" in container
    scheduler = documents["scheduler.yaml:Deployment/taskplane-scheduler"]
    assert scheduler["spec"]["replicas"] == 2
    api = documents["api.yaml:Deployment/taskplane-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/api/v1/health"
    assert api["readinessProbe"]["exec"]["command"] == ["taskplane", "check"]


def test_dockerfile_runs_the_taskplane_command_with_extras_that_exist() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    pyproject = (DEPLOY.parent / "pyproject.toml").read_text()
    assert 'ENTRYPOINT ["taskplane"]' in dockerfile
    extras = re.search(r'pip install "\.\[([a-z,]+)\]"', dockerfile)
    assert extras is not None
    for extra in extras.group(1).split(","):
        assert re.search(rf"^{extra} = \[", pyproject, re.M), f"extra {extra!r} is not in pyproject.toml"
