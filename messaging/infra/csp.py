"""The Content-Security-Policy header on every response: scripts only from LogLab's own files.

Our own middleware rather than django-csp: the policy is one fixed string plus the request's
websocket origin, which is ten lines here and a dependency with its own settings vocabulary
there (Django 6.0 brings a built-in one; this goes when LogLab moves to it).

- script-src 'self': no inline script, no eval. Data for scripts travels in
  `<script type="application/json">` blocks (json_script), which are not executed.
- style-src 'self' with style-src-attr 'unsafe-inline': stylesheets and <style> elements only
  from our files (htmx's injected indicator styles are turned off in base.html), but style
  attributes stay allowed. The few the templates write carry numbers computed on the server
  (a bar's width, a partition's marker rows); an attribute cannot run script, and moving them
  into JavaScript would add code to every page for no protection.
- connect-src names the websocket's own origin (ws:// or wss://) beside 'self': browsers that
  implement CSP 3 match it with 'self', older Safari does not.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def policy_for(request: HttpRequest) -> str:
    try:
        host = request.get_host()
    except DisallowedHost:  # the 400 page this request gets needs no websocket
        return f"{POLICY}; connect-src 'self'"
    return f"{POLICY}; connect-src 'self' {'wss' if request.is_secure() else 'ws'}://{host}"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy_for(request)
        return response
