"""``GET /metrics``: the Prometheus text of :mod:`yosai_secrets.metrics_export`.

Open by default, as a scrape target inside the cluster usually is. With ``METRICS_TOKEN`` set (the
app's config, else the environment; at least 32 characters), a scrape must send
``Authorization: Bearer <token>`` (compared in constant time), else it gets 401. The text holds
names, counts and times, never a value.

The secret ages are those of the posture page (the same rotation records, through
:func:`yosai_secrets.rotation_age.rotation_verdicts`), looked up at most once a minute per
process; ``rotation_open`` watches the journal of ``ROTATION_MANIFEST`` (default the manifest
``yosai-secrets rotate`` uses, relative to the working directory).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from flask import Blueprint, Flask, Response, current_app, jsonify

from ..environments import REQUIRED_SECRETS
from ..errors import MissingDependencyError
from ..flask import current_extension
from ..rotation_age import max_age_days, rotation_verdicts
from .auth import machine_token_matches

if TYPE_CHECKING:
    from ..metrics_export import PostureGauges

__all__ = ["METRICS_TOKEN_VARIABLE", "blueprint", "rotation_journal"]

#: The variable holding the bearer token a scrape must send (unset: no token needed).
METRICS_TOKEN_VARIABLE: Final = "METRICS_TOKEN"  # noqa: S105 (a variable's name)

_GAUGES_KEY: Final = "yosai_secrets.metrics_posture"
# rotation.plan.DEFAULT_MANIFEST and rotation.journal.JOURNAL_SUFFIX (see rotation_journal).
_DEFAULT_MANIFEST: Final = "k8s/config/api-secrets.yaml"
_JOURNAL_SUFFIX: Final = ".journal.json"

blueprint = Blueprint("yosai_secrets_metrics", __name__)


def _token_required() -> bool:
    configured = current_app.config.get(METRICS_TOKEN_VARIABLE) or os.environ.get(
        METRICS_TOKEN_VARIABLE, ""
    )
    return bool(str(configured).strip())


@blueprint.get("/metrics")
def metrics() -> Response:
    """The counters of every worker, the secrets' ages and an open rotation, for Prometheus."""
    if _token_required() and not machine_token_matches(METRICS_TOKEN_VARIABLE):
        refused = jsonify(error="a bearer token (METRICS_TOKEN) is required")
        refused.status_code = 401
        refused.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return refused
    from ..metrics_export import render

    try:
        body, content_type = render(_posture_gauges(current_app))
    except MissingDependencyError as exc:
        unavailable = jsonify(error=str(exc))
        unavailable.status_code = 501
        return unavailable
    return Response(body, status=200, content_type=content_type)


def _posture_gauges(app: Flask) -> PostureGauges:
    """The app's :class:`~yosai_secrets.metrics_export.PostureGauges`, built on first scrape."""
    from ..metrics_export import PostureGauges

    found = app.extensions.get(_GAUGES_KEY)
    if isinstance(found, PostureGauges):
        return found
    gauges = PostureGauges(lambda: _stamps(app), rotation_journal())
    app.extensions[_GAUGES_KEY] = gauges
    return gauges


def rotation_journal() -> Path:
    """The journal ``rotation_open`` watches: that of ``ROTATION_MANIFEST``, else the default's.

    Spelled here as :func:`yosai_secrets.rotation.journal.journal_path` does (a test checks they
    agree): importing the rotation package would cost a web worker about 100 ms.
    """
    manifest = Path(os.environ.get("ROTATION_MANIFEST", "").strip() or _DEFAULT_MANIFEST)
    return manifest.with_name(manifest.name + _JOURNAL_SUFFIX)


def _stamps(app: Flask) -> dict[str, datetime | None]:
    """Each required secret's last rotation, as the posture page finds it."""
    from .routes import rotation_info_of

    ext = current_extension(app)
    verdicts = rotation_verdicts(
        list(REQUIRED_SECRETS),
        ext.manager,
        rotation_info=rotation_info_of(app),
        max_days=max_age_days(),
    )
    return {verdict.key: verdict.rotated_at for verdict in verdicts}
