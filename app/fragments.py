"""Rendered page fragments kept by a worker process, each valid for one version of the data it shows.

A fragment (the staff queue's list with its tabs, say) is rendered once per data version and set of
request arguments, and served from memory until the version moves (app/models/versions.py: the database
moves it on every change of what the fragment shows). Fragments hold no per-user or per-request bits
(no CSRF token, no user name); the page around them is rendered per request as before.

The version must be read *before* the data is: a fragment kept under a version then never shows data older
than that version. Keys carry the version, so a fragment rendered from an older version (another thread of a
threaded worker) is never served for a newer one. Each app keeps its own fragments.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from flask import current_app
from markupsafe import Markup

MAX_FRAGMENTS = 256  # per process: a search typed letter by letter makes many keys; all are dropped when full


class FragmentCache:
    def __init__(self, max_entries: int = MAX_FRAGMENTS):
        self.max_entries = max_entries
        self.entries: dict[tuple, Markup] = {}
        self.version: Hashable = None

    def get(self, version: Hashable, key: Hashable, render: Callable[[], str]) -> Markup:
        """The fragment for ``key`` at ``version``: kept, or rendered by ``render()`` and kept."""
        if version != self.version:  # the data moved on: every fragment kept so far is out of date
            self.entries = {}
            self.version = version
        html = self.entries.get((version, key))
        if html is None:
            html = Markup(render())
            if len(self.entries) >= self.max_entries:
                self.entries = {}
            self.entries[(version, key)] = html
        return html


def fragment(version: Hashable, key: Hashable, render: Callable[[], str]) -> Markup:
    """This app's :meth:`FragmentCache.get`."""
    cache = current_app.extensions.get("certdesk.fragments")
    if cache is None:
        cache = current_app.extensions["certdesk.fragments"] = FragmentCache()
    return cache.get(version, key, render)
