"""``yosai-secrets rotate``: rotate SECRET_KEY and the passwords, resumably; finish or abort."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import ConfigurationError
from ..rotation import DEFAULT_MANIFEST, RotationEngine, RotationOptions, RotationReport
from ..rotation.alternating import setup_alternating
from ..rotation.kubectl import Kubectl
from ..rotation.postgres import DATABASE_URL_VARIABLE, read_admin_url_file
from .rotate_summary import print_report

__all__ = ["SHARED_OPTIONS", "build_options", "refuse_database_url", "rotate", "shared_options"]

F = TypeVar("F", bound=Callable[..., Any])


def _split(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [part.strip() for part in value.split(",") if part.strip()] or None


@dataclass(frozen=True)
class _Action:
    """The one thing a run does: rotate (default), or one of the exclusive flags."""

    finish: bool
    abort: bool
    restart: bool
    setup: bool
    dry_run: bool

    def name(self) -> str:
        for name in ("finish", "abort", "restart", "setup"):
            if getattr(self, name):
                return name
        return "rotate"


#: The options ``rotate`` and ``incident`` share: the manifest, the cluster and the database.
SHARED_OPTIONS = (
    click.option(
        "--manifest",
        type=click.Path(dir_okay=False, path_type=Path),
        default=DEFAULT_MANIFEST,
        show_default=True,
        help="The Kubernetes Secret manifest (created from its .example.yaml when missing).",
    ),
    click.option(
        "--no-apply", is_flag=True, help="Do not run kubectl (one role: the rotation holds)."
    ),
    click.option(
        "--database-url-file",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="PATH",
        help=f"A file (mode 0600) holding the admin connection (default: {DATABASE_URL_VARIABLE}).",
    ),
    click.option("--database-url", hidden=True, help="Refused: use the variable or the file."),
    click.option(
        "--db-users",
        metavar="ROLE_A,ROLE_B",
        help="Alternating-users mode: two roles; the idle one gets the new password "
        "(default: ROTATION_DB_USERS).",
    ),
    click.option(
        "--deployment",
        metavar="NAME",
        help="Deployment to restart (default: ROTATION_DEPLOYMENT, else yosai-api).",
    ),
    click.option(
        "--context", metavar="NAME", help="The kubeconfig context (default: the current)."
    ),
    click.option(
        "--force-conflicts",
        is_flag=True,
        help="Let the apply take over fields another field manager owns.",
    ),
    click.option("--reason", metavar="TEXT", help="Why (recorded in the audit log)."),
)


def shared_options(func: F) -> F:
    """Add :data:`SHARED_OPTIONS` to a command."""
    for option in reversed(SHARED_OPTIONS):
        func = option(func)
    return func


@click.command()
@shared_options
@click.option("--keys", help="Keys to rotate, comma-separated (default: SECRET_KEY and *PASSWORD).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show what the run (rotate, --restart, --finish or --abort) would do; write nothing. "
    "Exits with the status the run would.",
)
@click.option(
    "--restart",
    is_flag=True,
    help="Continue a held rotation where kubectl reaches the cluster: apply, change the "
    "password, restart; or apply and restart again.",
)
@click.option(
    "--finish",
    is_flag=True,
    help="Drop the previous values, once the cluster runs the new ones and old sessions expired.",
)
@click.option("--now", is_flag=True, help="--finish without waiting for the session lifetime.")
@click.option(
    "--skip-cluster-check",
    is_flag=True,
    help="--finish without checking the cluster (with --now only: values delivered otherwise).",
)
@click.option("--abort", is_flag=True, help="Roll back to the previous values everywhere.")
@click.option(
    "--setup-alternating",
    is_flag=True,
    help="Create the second database role of alternating-users mode (idempotent).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def rotate(ctx: click.Context, /, **params: Any) -> None:
    """Rotate secrets; re-run to resume after any interruption.

    New values for SECRET_KEY and every *PASSWORD key go into the manifest (the previous
    SECRET_KEY into SECRET_KEY_FALLBACKS), the secret store (SECRET_BACKEND) and the database
    role; the manifest is applied server-side and the deployment restarted. With one database
    role, its password changes only when the cluster is reachable in the same run; otherwise the
    rotation holds, and `rotate --restart` goes on from where kubectl reaches the cluster.
    Alternating users (--setup-alternating, then --db-users) never refuse a login.

    \b
    Exit status:
      0  done (the summary says what is next, e.g. --finish later)
      2  refused or failed: the message says why and what to run
      3  held: the new values cannot reach the app yet; nothing irreversible
         was done; run `yosai-secrets rotate --restart` where kubectl
         reaches the cluster (or once you changed the password yourself)
    """
    action = _check_flags(params)
    options = _options(params)
    report = _run(options, action)
    if params["as_json"]:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        print_report(report)
    if report.exit_code:
        ctx.exit(report.exit_code)


def refuse_database_url(params: dict[str, Any]) -> None:
    """``--database-url`` is refused: a password on a command line is visible to everyone."""
    if params["database_url"] is not None:
        raise ConfigurationError(
            "--database-url is not accepted: a password on the command line is visible to "
            "every user of this machine (ps) and kept in shell history. Set "
            f"{DATABASE_URL_VARIABLE}, or give --database-url-file PATH (mode 0600). If that "
            "was a real password, change it"
        )


def _check_flags(params: dict[str, Any]) -> _Action:
    """One action per run, and only the flags that fit it."""
    refuse_database_url(params)
    action = _Action(
        finish=params["finish"],
        abort=params["abort"],
        restart=params["restart"],
        setup=params["setup_alternating"],
        dry_run=params["dry_run"],
    )
    chosen = [f"--{n}" for n in ("finish", "abort", "restart") if params[n]]
    chosen += ["--setup-alternating"] if action.setup else []
    if len(chosen) > 1 or (action.setup and action.dry_run):
        raise click.UsageError(f"{' and '.join([*chosen, '--dry-run'][:2])} cannot be combined")
    if action.restart and params["no_apply"]:
        raise click.UsageError("--restart and --no-apply cannot be combined")
    for flag in ("now", "skip_cluster_check"):
        if params[flag] and not action.finish:
            raise click.UsageError(f"--{flag.replace('_', '-')} goes with --finish only")
    return action


def _options(params: dict[str, Any]) -> RotationOptions:
    return build_options(
        params,
        keys=_split(params["keys"]),
        now=params["now"],
        skip_cluster_check=params["skip_cluster_check"],
    )


def build_options(params: dict[str, Any], **extra: Any) -> RotationOptions:
    """The rotation's options from :data:`SHARED_OPTIONS`' parameters (and ``extra`` fields)."""
    url_file: Path | None = params["database_url_file"]
    console = _Console()
    try:
        kubectl = Kubectl(context=params["context"])
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--context") from None
    return RotationOptions(
        manifest=params["manifest"],
        apply=not params["no_apply"],
        deployment=params["deployment"],
        database_url=read_admin_url_file(url_file) if url_file is not None else None,
        db_users=_split(params["db_users"]),
        environ=os.environ,
        kubectl=kubectl,
        force_conflicts=params["force_conflicts"],
        progress=console.progress,
        announce=console.announce,
        command_flags=_command_flags(params),
        reason=params["reason"] or "",
        **extra,
    )


def _command_flags(params: dict[str, Any]) -> tuple[str, ...]:
    """The options a suggested next command repeats (where, never what or how)."""
    flags: list[str] = []
    if params["manifest"] != DEFAULT_MANIFEST:
        flags.append(f"--manifest {params['manifest']}")
    for name in ("context", "deployment", "db_users", "database_url_file"):
        if params[name]:
            flags.append(f"--{name.replace('_', '-')} {params[name]}")
    return tuple(flags)


def _run(options: RotationOptions, action: _Action) -> RotationReport:
    if action.setup:
        return setup_alternating(options)
    engine = RotationEngine(options)
    run = {
        "finish": engine.finish,
        "abort": engine.abort,
        "restart": engine.restart,
        "rotate": engine.rotate,
    }[action.name()]
    return run(dry_run=action.dry_run)


class _Console:
    """Progress of long steps (spinner and elapsed time) on stderr, when it is a terminal."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self._display: Any = None
        self._depth = 0

    def announce(self, line: str) -> None:
        """Show ``line`` at once (stderr), above the progress display."""
        if self.console.is_terminal:
            self.console.print(line, markup=False, highlight=False)
        else:
            click.echo(line, err=True)

    def progress(self, label: str) -> AbstractContextManager[object]:
        """A context during which ``label`` is shown with its elapsed time."""
        if not self.console.is_terminal:
            return contextlib.nullcontext()
        return self._task(label)

    @contextlib.contextmanager
    def _task(self, label: str) -> Iterator[None]:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        if self._display is None:
            self._display = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._display.start()
        self._depth += 1
        task = self._display.add_task(label, total=None)
        try:
            yield
        finally:
            self._display.remove_task(task)
            self._depth -= 1
            if self._depth == 0:
                self._display.stop()
                self._display = None
