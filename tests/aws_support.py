"""Helpers for the AWS backend tests: count and shape calls on a real botocore client.

Nothing here replaces boto3: calls are seen, slowed or answered with an error through botocore's
own event hooks (``before-call``), which is where botocore's ``Stubber`` hooks in too.
"""

from __future__ import annotations

import threading
import time
from typing import Any

_SERVICE = "secrets-manager"


class CallLog:
    """Records the name of every Secrets Manager operation a client makes (before it is sent)."""

    def __init__(self, client: Any) -> None:
        self.operations: list[str] = []
        self._lock = threading.Lock()
        client.meta.events.register(f"before-call.{_SERVICE}.*", self._seen)

    def _seen(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.operations.append(str(model.name))

    def count(self, operation: str | None = None) -> int:
        """How many calls were made (of ``operation``, if given)."""
        with self._lock:
            return sum(1 for op in self.operations if operation in (None, op))


def inject_error(
    client: Any,
    operation: str,
    code: str,
    *,
    times: int | None = None,
    message: str = "injected",
    status: int = 400,
) -> list[int]:
    """Make ``operation`` fail with the AWS error ``code`` (``times`` times, or always).

    botocore raises its own ``ClientError`` subclass from the parsed error, exactly as for an
    answer from AWS. Returns a one-item list counting the injected failures.
    """
    injected = [0]

    def answer(model: Any, **_: Any) -> Any:
        if times is not None and injected[0] >= times:
            return None
        from botocore.awsrequest import AWSResponse
        from botocore.compat import HTTPHeaders

        injected[0] += 1
        parsed = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "injected"},
        }
        return AWSResponse("https://injected.invalid/", status, HTTPHeaders(), None), parsed

    client.meta.events.register(f"before-call.{_SERVICE}.{operation}", answer)
    return injected


def slow_down(client: Any, seconds: float, operation: str = "*") -> threading.Event:
    """Make each ``operation`` call wait ``seconds`` before it is sent, while the event is set."""
    active = threading.Event()
    active.set()

    def wait(**_: Any) -> None:
        if active.is_set():
            time.sleep(seconds)

    client.meta.events.register(f"before-call.{_SERVICE}.{operation}", wait)
    return active
