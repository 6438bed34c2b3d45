"""Audit, leak scanning and incident response.

* :mod:`.events` — one structured event per read that reaches a backend (names only, never
  values), per-key hit counts, and the operations (rotations, incidents) with who ran them and why;
  ``YOSAI_AUDIT_LOG`` writes them as JSON lines.
* :mod:`.analyze` — reads our events and OpenBao/Vault audit-device logs and flags what looks wrong.
* :mod:`.scan` — finds configured secret values (in common encodings) and credential shapes in files
  and git history, never printing a value.
* :mod:`.revoke` — revocations an incident needs (Vault tokens, AppRole secret ids, leases, the
  Auth0 client secret).
* :mod:`.incident` — the one-command incident: rotate with no grace, revoke, cut sessions, tell
  running processes, scan, report.

Each step of an incident is reported as a :class:`~.outcome.StepOutcome`.
"""
