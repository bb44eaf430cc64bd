"""Wire names live in one module, and the docs list exactly the dead-letter reasons it defines."""

from __future__ import annotations

import re
from pathlib import Path

from taskplane import DeadReason, TaskState
from taskplane.core.protocol import Header, Metric, PublishOption, TransportOption

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_docs_list_exactly_the_dead_reasons() -> None:
    text = (DOCS / "concepts.md").read_text()
    table = text.split("<!-- dead-reasons -->", 1)[1].split("<!-- /dead-reasons -->", 1)[0]
    listed = re.findall(r"^\| `([a-z_]+)` \|", table, re.M)
    assert sorted(listed) == sorted(reason.value for reason in DeadReason)


def test_no_other_page_keeps_its_own_list_of_reasons() -> None:
    # A page that names three or more reasons in one paragraph is keeping a list that can drift.
    for page in DOCS.glob("*.md"):
        if page.name == "concepts.md":
            continue
        for paragraph in page.read_text().split("\n\n"):
            named = {reason.value for reason in DeadReason if f"`{reason.value}`" in paragraph}
            assert len(named) < 3, (page.name, sorted(named))


def test_rejected_reasons_are_those_that_never_ran() -> None:
    assert {reason for reason in DeadReason if reason.rejected} == {
        DeadReason.POISON,
        DeadReason.UNKNOWN_TASK,
        DeadReason.MALFORMED,
        DeadReason.FORGED,
        DeadReason.EXPIRED,
    }


def test_wire_names_have_their_prefixes() -> None:
    assert all(header.value.startswith("x-taskplane-") for header in Header)
    assert all(option.value.startswith("taskplane_") for option in PublishOption)
    assert all(option.value.startswith("taskplane_") for option in TransportOption)
    assert all(metric.value.startswith(("celery_", "taskplane_")) for metric in Metric)
    assert "failed" not in {state.value for state in TaskState}  # a name accepted for "dead", not a state
