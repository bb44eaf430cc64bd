"""Every Celery setting is classified (honoured, mapped, taskplane's own, refused) in one table, checked against
Celery's own list of settings; docs/migration.md shows the same table."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from packaging.version import Version

from taskplane.celery.settings_table import REFUSED_PREFIXES, SETTINGS, rule_for
from taskplane.celery.user_config import CELERY_SETTINGS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "migration.md"
BEGIN, END = "<!-- settings table: begin -->", "<!-- settings table: end -->"


def test_every_setting_of_the_installed_celery_is_classified() -> None:
    missing = sorted(name for name in CELERY_SETTINGS if rule_for(name) is None)
    assert not missing, f"Celery settings taskplane does not classify: {missing} (taskplane/celery/settings_table.py)"


def test_the_table_names_only_celery_settings() -> None:
    unknown = sorted(set(SETTINGS) - CELERY_SETTINGS)
    if Version(version("celery")) >= Version("5.7"):
        assert not unknown, f"not Celery settings: {unknown}"
    assert all(rule.note or rule.handling == "honoured" for rule in SETTINGS.values())
    assert all(not name.startswith(tuple(REFUSED_PREFIXES)) for name in SETTINGS)


def markdown() -> str:
    """The table docs/migration.md shows."""
    rows = ["| Celery setting | under taskplane | what it becomes / what to write instead |", "|---|---|---|"]
    for name, rule in sorted(SETTINGS.items()):
        rows.append(f"| `{name}` | {rule.handling} | {rule.note} |")
    for prefix, note in sorted(REFUSED_PREFIXES.items()):
        rows.append(f"| `{prefix}*` | refused | {note} |")
    return "\n".join(rows)


def test_the_docs_show_the_same_table() -> None:
    text = DOCS.read_text()
    shown = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert shown == markdown(), (
        "docs/migration.md's settings table differs: paste tests.celery.test_settings_table.markdown()"
    )
