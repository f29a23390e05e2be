"""docs/architecture.md shows every table-driven lifecycle exactly as the code's transition table has it.

For each table below, the section "Lifecycles" must hold one row per state, ``| `state` | `next`, ... |``
(allowed next states in alphabetical order, ``—`` for a final state). Change a table and this test names
the row to update; the machines without a table (payment, outbox, send-to-many, audit pack, webhook
delivery) are described in prose next to the function that sets each status.
"""

import pytest

from app.enums import CERTIFICATE_REQUEST_TRANSITIONS, GENERATION_TRANSITIONS, IMPORT_TRANSITIONS
from app.lifecycle import EXEMPTION_CERTIFICATE_TRANSITIONS, EXEMPTION_REQUEST_TRANSITIONS, REISSUE_TRANSITIONS
from tests.paths import REPO

MACHINES = {
    "Exemption request": EXEMPTION_REQUEST_TRANSITIONS,
    "Exemption certificate": EXEMPTION_CERTIFICATE_TRANSITIONS,
    "COI request": CERTIFICATE_REQUEST_TRANSITIONS,
    "Import run": IMPORT_TRANSITIONS,
    "Generation run": GENERATION_TRANSITIONS,
    "Re-issue run": REISSUE_TRANSITIONS,
}


def rows(table) -> list[str]:
    return [f"| `{state}` | " + (", ".join(f"`{t}`" for t in sorted(table[state])) or "—") + " |" for state in table]


def _section(machine: str) -> str:
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    lifecycles = text[text.index("## Lifecycles"):]
    start = lifecycles.index(f"### {machine}")
    end = lifecycles.find("\n### ", start + 1)
    return lifecycles[start:end if end != -1 else None]


@pytest.mark.parametrize("machine", MACHINES)
def test_the_architecture_doc_shows_the_transition_table(machine):
    section = _section(machine)
    table_rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert table_rows == rows(MACHINES[machine])


def test_a_changed_table_is_noticed():
    changed = {**CERTIFICATE_REQUEST_TRANSITIONS, next(iter(CERTIFICATE_REQUEST_TRANSITIONS)): frozenset()}
    assert rows(changed) != rows(CERTIFICATE_REQUEST_TRANSITIONS)
