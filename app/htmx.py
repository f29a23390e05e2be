"""One small set of helpers for htmx requests (full page or fragment, triggers, redirects)."""

from __future__ import annotations

import json

from flask import make_response, redirect, render_template, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def wants_partial() -> bool:
    return (
        is_htmx()
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render_page_or_partial(page: str, partial: str, status: int = 200, **context):
    """The page includes the partial, so the markup exists once; htmx gets just the partial."""
    template = partial if wants_partial() else page
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def hx_trigger(response, *events: str, toast: str | None = None, level: str = "success"):
    payload: dict = {event: True for event in events}
    if toast:
        payload["toast"] = {"message": toast, "level": level}
    if payload:
        response.headers["HX-Trigger"] = json.dumps(payload)
    return response


def hx_redirect(url: str):
    """Navigate elsewhere: HX-Redirect for htmx, a 303 (post/redirect/get) otherwise."""
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=303)


def stop_polling(response):
    response.status_code = 286
    return response
