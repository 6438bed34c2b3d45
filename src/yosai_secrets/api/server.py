"""Run the API under gunicorn with the settings of :mod:`.gunicorn_conf`."""

from __future__ import annotations

from typing import Any

from ..errors import MissingDependencyError

__all__ = ["run_gunicorn"]


def run_gunicorn(host: str, port: int, workers: int | None = None) -> None:
    """Serve with gunicorn: the settings of :mod:`.gunicorn_conf`, bound to ``host:port``.

    Raises:
        MissingDependencyError: gunicorn is not installed.
    """
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        raise MissingDependencyError("gunicorn", "flask", "serving the API") from None
    from . import gunicorn_conf

    options: dict[str, Any] = {
        name: getattr(gunicorn_conf, name)
        for name in dir(gunicorn_conf)
        if not name.startswith("_") and name not in {"annotations", "os"}
    }
    options["bind"] = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    if workers is not None:
        options["workers"] = workers

    class _Api(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for name, value in options.items():
                if name in self.cfg.settings:
                    self.cfg.set(name, value)

        def load(self) -> Any:
            from . import create_app

            return create_app()

    _Api().run()
