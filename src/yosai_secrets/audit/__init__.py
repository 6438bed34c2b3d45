"""Audit, leak scanning and incident response.

Access audit (names only, never values):

* :mod:`.events` — the events: one per read that reaches a backend, per-key hit summaries, and
  operations (rotations, incidents) with who ran them and why; :mod:`.sink` appends them as JSON
  lines to ``YOSAI_AUDIT_LOG``; :mod:`.reads` is the manager's hook (and the metrics' counts).
* :mod:`.analyze` — ``yosai-secrets audit``: :mod:`.logs` reads our events and OpenBao/Vault
  audit-device logs as one stream, :mod:`.rules` flags what looks wrong.

Leak scanning:

* :mod:`.scan` — our own values, as they are and encoded (:mod:`.encodings`), and credential shapes
  (:mod:`.shapes`) in files and git history (:mod:`.history`); :mod:`.known` gathers the values.

Incidents:

* :mod:`.incident` — the one-command incident: capture what leaked (:mod:`.incident_capture`),
  rotate with no grace (:mod:`.incident_rotation`), revoke, tell running processes, scan, report
  (:mod:`.incident_report`); each step a :class:`~.outcome.StepOutcome`.
* :mod:`.revoke` — the Vault token and AppRole secret id in use (:mod:`.vault_session`,
  :mod:`.secret_id`), Vault leases, and the Auth0 client secret (:mod:`.auth0_mgmt`).
"""
