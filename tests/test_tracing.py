"""Backend reads are OpenTelemetry spans (the ``tracing`` extra), names only, never values."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.canary_sweep import CANARY
from yosai_secrets import SecretManager
from yosai_secrets.errors import ConfigurationError
from yosai_secrets.testing import MemoryBackend
from yosai_secrets.tracing import SPAN_NAME

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans finished during the test (the SDK's provider, set once for the session)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(_PROVIDER)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def test_a_backend_read_is_a_span_and_a_hit_is_not(
    spans: InMemorySpanExporter, canary: str
) -> None:
    manager = SecretManager(MemoryBackend({"DB_PASSWORD": canary}))
    assert manager.get("DB_PASSWORD") == canary
    assert manager.get("DB_PASSWORD") == canary  # a hit: no second span
    (span,) = [s for s in spans.get_finished_spans() if s.name == SPAN_NAME]
    attributes = dict(span.attributes or {})
    assert attributes["yosai_secrets.backend"] == "memory"
    assert list(attributes["yosai_secrets.keys"]) == ["DB_PASSWORD"]  # type: ignore[arg-type]
    assert CANARY.search(repr(attributes)) is None


def test_a_failed_read_is_an_error_span_without_values(spans: InMemorySpanExporter) -> None:
    manager = SecretManager(MemoryBackend({}))
    with pytest.raises(ConfigurationError):
        manager.get("MISSING_KEY")
    (span,) = [s for s in spans.get_finished_spans() if s.name == SPAN_NAME]
    assert span.status.status_code is trace.StatusCode.ERROR
    assert CANARY.search(repr([e.attributes for e in span.events])) is None


def test_a_process_that_does_not_trace_never_imports_opentelemetry() -> None:
    """Importing it costs hundreds of milliseconds: only an application that traces pays it."""
    import subprocess
    import sys

    code = (
        "import sys; from yosai_secrets import SecretManager;"
        " from yosai_secrets.testing import MemoryBackend;"
        " SecretManager(MemoryBackend({'KEY': 'value-1234'})).get('KEY');"
        " print(any(m.startswith('opentelemetry') for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
