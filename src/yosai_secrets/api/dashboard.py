"""The secret-posture page at ``/dashboard/`` (Dash, extra ``dashboard``).

A table of the secrets (source, state, age, days until due) and a bar chart of each secret's age
against the rotation policy's line. The layout is built on every page load from the same posture
as ``GET /api/secrets``: names, places and times, never a value.

Access: open in development; in every other environment the page (and every Dash route under it)
needs an Auth0 login — the session set by ``/login`` (:mod:`.login`), or a valid access token as
for the API. A browser without one is sent to ``/login``; anything else gets 401.
"""

from __future__ import annotations

from typing import Any, Final, cast

from flask import Flask, Response, current_app, has_request_context, redirect, request, session
from flask.typing import ResponseReturnValue

from ..errors import MissingDependencyError
from ..flask import current_extension
from .auth import authenticate, bearer_token
from .login import SESSION_USER_KEY, login_url
from .routes import secrets_posture

__all__ = ["DASHBOARD_PATH", "init_dashboard"]

DASHBOARD_PATH: Final = "/dashboard/"

_STATE_COLOURS: Final = {
    "ok": "#1b7f3b",
    "due-soon": "#b54708",
    "unknown": "#b54708",
    "missing": "#b42318",
    "stale-served": "#b54708",
    "overdue": "#b42318",
}

_CELL: Final = {"padding": "6px 14px", "borderBottom": "1px solid #e4e7ec", "textAlign": "left"}


def init_dashboard(app: Flask) -> Any:
    """Mount the posture page on ``app`` at ``/dashboard/`` and return the Dash app.

    Raises:
        MissingDependencyError: Dash is not installed.
    """
    try:
        import dash
    except ImportError:
        raise MissingDependencyError("dash", "dashboard", "the posture page") from None

    board = dash.Dash(
        __name__,
        server=cast(Any, app),
        url_base_pathname=DASHBOARD_PATH,
        title="Yōsai Secrets — posture",
        update_title="",
        serve_locally=True,
    )
    board.layout = _layout
    app.before_request(_guard)
    return board


def _guard() -> Response | ResponseReturnValue | None:
    """Let a request under /dashboard/ through only when allowed in this environment."""
    if not request.path.startswith(DASHBOARD_PATH.rstrip("/")):
        return None
    if current_extension(current_app).environment == "development":
        return None
    if session.get(SESSION_USER_KEY):
        return None
    if bearer_token() is None and request.path == DASHBOARD_PATH and _wants_html():
        return redirect(login_url(DASHBOARD_PATH))
    return authenticate()


def _wants_html() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def _layout() -> Any:
    from dash import dcc, html

    if not has_request_context():
        # Dash calls the layout once when it is assigned, to validate it: no request yet.
        return html.Main(id="posture")
    document = secrets_posture(current_extension(current_app))
    rows = document["secrets"]
    policy = document["policy_days"]
    return html.Main(
        [
            html.H1("Secret posture", style={"marginBottom": "4px"}),
            html.P(
                f"environment {document['environment']} · backend {document['backend']} · "
                f"rotation policy {policy} days",
                id="posture-summary",
                style={"color": "#475467", "marginTop": "0"},
            ),
            _table(rows),
            dcc.Graph(
                id="age-chart",
                figure=_age_figure(rows, policy),
                config={"displayModeBar": False},
            ),
        ],
        style={"fontFamily": "system-ui, sans-serif", "margin": "24px 40px", "maxWidth": "1000px"},
    )


def _table(rows: list[dict[str, Any]]) -> Any:
    """The posture table: a row per secret."""
    from dash import html

    header = html.Tr(
        [
            html.Th(h, style=_CELL)
            for h in ("secret", "required", "source", "state", "age (days)", "due in (days)")
        ]
    )
    return html.Table(
        [html.Thead(header), html.Tbody([_table_row(row) for row in rows])],
        id="posture-table",
        style={"borderCollapse": "collapse", "marginBottom": "24px"},
    )


def _table_row(row: dict[str, Any]) -> Any:
    from dash import html

    state_style = {**_CELL, "color": _colour(row), "fontWeight": "600"}
    return html.Tr(
        [
            html.Td(row["name"], className="secret-name", style=_CELL),
            html.Td("yes" if row["required"] else "no", style=_CELL),
            html.Td(row["where"] or row["source"], className="secret-source", style=_CELL),
            html.Td(
                row["state"], className=f"secret-state state-{row['state']}", style=state_style
            ),
            html.Td(_number(row["age_days"]), className="secret-age", style=_CELL),
            html.Td(_due(row), style=_CELL),
        ],
        id=f"row-{row['name']}",
        className="posture-row",
    )


def _colour(row: dict[str, Any]) -> str:
    # A secret the environment does not require is only informational when missing: grey.
    if row["state"] == "missing" and not row["required"]:
        return "#667085"
    return _STATE_COLOURS.get(row["state"], "#101828")


def _number(value: float | int | None) -> str:
    return "unknown" if value is None else f"{value:g}"


def _due(row: dict[str, Any]) -> str:
    # A known age without a due date: a secret the rotation policy does not cover (Auth0's).
    if row["days_until_due"] is None and row["age_days"] is not None:
        return "-"
    return _number(row["days_until_due"])


def _age_figure(rows: list[dict[str, Any]], policy: int) -> dict[str, Any]:
    """A bar per secret (its age in days; unknown ages drawn as 0) and the policy's line."""
    ages = [row["age_days"] or 0 for row in rows]
    top = max([policy * 1.15, *(a * 1.1 for a in ages)])
    return {
        "data": [
            {
                "type": "bar",
                "x": [row["name"] for row in rows],
                "y": ages,
                "marker": {"color": [_colour(row) for row in rows]},
                "text": [
                    "unknown" if row["age_days"] is None else f"{row['age_days']:g} d"
                    for row in rows
                ],
                "textposition": "outside",
                "name": "age (days)",
            }
        ],
        "layout": {
            "title": {"text": f"Age of each secret against the {policy}-day rotation policy"},
            "yaxis": {"title": {"text": "days since last rotation"}, "range": [0, top]},
            **_policy_line(policy),
            "margin": {"t": 60, "r": 20, "b": 60, "l": 60},
            "height": 380,
        },
    }


def _policy_line(policy: int) -> dict[str, Any]:
    """The figure layout's dashed line at the policy's age, and its label."""
    return {
        "shapes": [
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": policy,
                "y1": policy,
                "line": {"color": "#b42318", "dash": "dash", "width": 2},
            }
        ],
        "annotations": [
            {
                "xref": "paper",
                "x": 1,
                "y": policy,
                "text": f"{policy}-day policy",
                "showarrow": False,
                "yanchor": "bottom",
                "xanchor": "right",
                "font": {"color": "#b42318"},
            }
        ],
    }
