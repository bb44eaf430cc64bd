"""The ``make bench`` report as Markdown: figures per system and taskplane's ratio to each other system."""

from __future__ import annotations

from typing import Any

SYSTEMS = ("taskplane", "celery", "dramatiq")
LABELS = {"taskplane": "taskplane", "celery": "plain Celery", "dramatiq": "Dramatiq"}
RATES = (
    ("enqueue", "enqueue, one producer (tasks/s)"),
    ("batch_enqueue", "batch enqueue (tasks/s)"),
    ("drain_1", "drain, 1 worker process (tasks/s)"),
    ("drain_2", "drain, 2 worker processes (tasks/s)"),
    ("drain_4", "drain, 4 worker processes (tasks/s)"),
    ("drain_2_prefetch_4", "drain, 2 worker processes, prefetch 4 per process as Celery's (tasks/s)"),
)
COUNTS = (
    ("enqueue_round_trips", "round trips per enqueue"),
    ("enqueue_commands", "commands per enqueue"),
    ("task_round_trips", "round trips per executed task"),
    ("task_commands", "commands per executed task"),
)


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs:
        return "—"
    return f"{ours / theirs:.2f}x"


def render(report: dict[str, Any]) -> str:
    """Markdown tables of one report (the parts it holds)."""
    out = [
        f"{report['date']}, {report['machine']['cpus']} CPUs, Python {report['machine']['python']}, "
        f"server {report.get('server', '?')}, {report.get('tasks', 0):,} tasks per run, "
        f"medians of {report.get('rounds', 1)} round(s)",
        "",
    ]
    head = "| | " + " | ".join(LABELS[s] for s in SYSTEMS) + " | vs Celery | vs Dramatiq |"
    rule = "|---" * (len(SYSTEMS) + 3) + "|"
    throughput = report.get("throughput")
    if throughput:
        out += [head, rule]
        for key, label in RATES:
            values = [throughput.get(s, {}).get(key) for s in SYSTEMS]
            if key == "batch_enqueue":  # the others have no batch call: compared with their one-call enqueue
                values[1:] = [throughput.get(s, {}).get("enqueue") for s in SYSTEMS[1:]]
                shown = [values[0], None, None]
            elif key == "drain_2_prefetch_4":  # taskplane only: compared with the others' drain at -c 2
                values[1:] = [throughput.get(s, {}).get("drain_2") for s in SYSTEMS[1:]]
                shown = [values[0], None, None]
            else:
                shown = values
            out.append(
                f"| {label} | "
                + " | ".join(_number(v) for v in shown)
                + f" | {_ratio(values[0], values[1])} | {_ratio(values[0], values[2])} |"
            )
        out.append("")
    commands = report.get("commands")
    if commands:
        out += ["| | " + " | ".join(LABELS[s] for s in SYSTEMS) + " |", "|---" * (len(SYSTEMS) + 1) + "|"]
        for key, label in COUNTS:
            out.append(f"| {label} | " + " | ".join(_number(commands.get(s, {}).get(key), 1) for s in SYSTEMS) + " |")
        out.append("")
    memory = report.get("memory")
    if memory:
        rss = memory["worker_rss"]
        out += [
            f"Worker RSS (all processes, -c 2) before and after {memory['delayed_tasks']:,} tasks delayed by an hour:",
            "",
        ]
        out += ["| | before (MiB) | after (MiB) | growth (MiB) | not yet taken in |", "|---|---|---|---|---|"]
        for name in SYSTEMS:
            if name in rss:
                row = rss[name]
                out.append(
                    f"| {LABELS[name]} | {row['before_mib']:.1f} | {row['after_mib']:.1f} | {row['growth_mib']:.1f} "
                    f"| {row['not_yet_taken']:,} |"
                )
        records = memory["record_bytes"]
        out += [
            "",
            "Redis memory per finished task kept: taskplane (record hash, index entries, Celery's result meta) "
            f"{records['taskplane']:,.0f} bytes; plain Celery result {records['celery']:,.0f} bytes.",
            "",
        ]
    http = report.get("http")
    if http:
        fixed = http["at_200"]
        out.append(
            f"HTTP enqueue at {fixed['rate']:.0f} requests/s: p50 {fixed['p50_ms']:.2f} ms, "
            f"p99 {fixed['p99_ms']:.2f} ms, "
            f"{fixed['errors']} errors; highest rate with p99 under 10 ms: {http['max_rate_p99_under_10ms']:,.0f}/s."
        )
    dashboard = report.get("dashboard")
    if dashboard:
        loads = ", ".join(f"{name} {page['median_ms']:,.0f} ms" for name, page in dashboard["pages"].items())
        out.append(
            f"Dashboard page loads (headless Chromium, median, signed in) with {dashboard['records']:,} task records "
            f"and {dashboard['dead_letters']:,} dead letters: {loads}."
        )
    if report.get("cluster"):
        out += _cluster_table(report["cluster"])
    return "\n".join(out)


def _cluster_table(cluster: dict[str, Any]) -> list[str]:
    """taskplane's rates on one server beside those on a 3-primary cluster."""
    single, spread = cluster["one server"], cluster["3-primary cluster"]
    out = [
        "",
        f"taskplane on one server and on a 3-primary cluster on this machine ({cluster['tasks']:,} tasks over "
        f"{', '.join(cluster['queues'])}, one per primary; -c {cluster['concurrency']}):",
        "",
        "| | one server | 3-primary cluster | cluster / one |",
        "|---|---|---|---|",
    ]
    for key, label in (("enqueue", "enqueue (tasks/s)"), ("drain", "drain (tasks/s)")):
        ratio = _ratio(spread[key], single[key])
        out.append(f"| {label} | {_number(single[key])} | {_number(spread[key])} | {ratio} |")
    return out
