"""docs/architecture.md shows every lifecycle's transition table exactly as the engine has it.

For each machine of ``app.lifecycle`` (the models' own and their sub-states), the section named below in
"Lifecycles" must hold one row per state, ``| `state` | `next`, ... |`` (``lifecycle.table_rows``). Change a
table and this test names the row to update; add a machine and it asks for its section.
"""

import pytest

from app import lifecycle
from tests.paths import REPO

SECTIONS = {
    "exemption request": "Exemption request",
    "exemption certificate": "Exemption certificate",
    "certificate request": "COI request",
    "certificate request automation decision": "COI request decision",
    "certificate request issuing": "COI request issuing",
    "import run": "Import run",
    "generation run": "Generation run",
    "audit pack": "Audit pack",
    "send-to-many run": "Send-to-many run",
    "re-issue run": "Re-issue run",
    "payment": "Payment",
    "policy": "Policy",
    "webhook delivery": "Webhook delivery",
}
MACHINES = lifecycle.all_machines()


def _section(heading: str) -> str:
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    lifecycles = text[text.index("## Lifecycles"):]
    start = lifecycles.index(f"### {heading}\n")
    end = lifecycles.find("\n### ", start + 1)
    return lifecycles[start:end if end != -1 else None]


def test_every_machine_has_a_section():
    assert set(SECTIONS) == set(MACHINES)


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_the_architecture_doc_shows_the_transition_table(name):
    section = _section(SECTIONS[name])
    table_rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert table_rows == lifecycle.table_rows(MACHINES[name][1])


def test_a_changed_table_is_noticed():
    machine = lifecycle.MACHINES[next(iter(lifecycle.MACHINES))]
    changed = lifecycle.Machine(machine.name, {**machine.table, next(iter(machine.table)): frozenset()}, "x")
    assert lifecycle.table_rows(changed) != lifecycle.table_rows(machine)
