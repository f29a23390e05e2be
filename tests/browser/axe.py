"""Run axe-core (vendored in static/vendor, injected by the tests only: no page links it) on a Playwright page.

`Audit.check(name)` runs the WCAG 2.1 A/AA and best-practice rules on the page as it is now, records
the number of violations per impact under `name`, and keeps every serious or critical one; a test calls
`audit.assert_clean()` at its end so one run lists every failing page. Set AXE_REPORT to a file name to
get the counts of the whole run as JSON.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter

from tests.paths import REPO

AXE = REPO / "static" / "vendor" / "axe.min.js"  # refreshed by `make vendor-axe`
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
FAILING = ("serious", "critical")
RESULTS: dict[str, dict] = {}  # page -> {impact: number of rules violated, "rules": [...]}

RUN = """async (tags) => {
  const r = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, count: v.nodes.length,
    nodes: v.nodes.slice(0, 4).map(n => n.target.join(" ") + " :: "
      + (n.failureSummary || "").split("\\n").slice(1, 3).join(" "))}));
}"""


class Audit:
    def __init__(self, page):
        self.page = page
        self.failures: list[str] = []
        self.pages: list[str] = []

    def check(self, name: str, *, error_page: bool = False) -> list[dict]:
        page = self.page
        page.wait_for_load_state("load")
        heading = page.evaluate("() => (document.querySelector('h1') || {}).textContent || ''").strip()
        is_error = bool(re.fullmatch(r"\d{3}", heading)) or heading == "Internal Server Error"
        assert is_error == error_page, f"{name}: {page.url} shows {heading!r}"
        if not page.evaluate("() => typeof window.axe !== 'undefined'"):
            page.add_script_tag(url="/static/vendor/axe.min.js")  # same origin: the page's CSP allows it
        violations = page.evaluate(RUN, TAGS)
        if "(self-test)" not in name:
            RESULTS[name] = dict(Counter(v["impact"] for v in violations))
            RESULTS[name]["rules"] = sorted(f"{v['impact']}:{v['id']}" for v in violations)
        self.pages.append(name)
        for v in violations:
            if v["impact"] in FAILING:
                self.failures.append(f"{name}: [{v['impact']}] {v['id']} ({v['help']}), {v['count']} element(s): "
                                     + " | ".join(v["nodes"]))
        return violations

    def assert_clean(self) -> None:
        assert self.pages, "no page was checked"
        assert not self.failures, "serious/critical accessibility violations:\n" + "\n".join(self.failures)


def write_report() -> None:
    target = os.environ.get("AXE_REPORT")
    if target and RESULTS:
        existing = {}
        if os.path.exists(target):
            with open(target) as fh:
                existing = json.load(fh)
        existing.update(RESULTS)
        with open(target, "w") as fh:
            json.dump(existing, fh, indent=1, sort_keys=True)
