"""``memprov run``: run a job under watch; flags become :class:`provisioner.run.wrapper.Options`.

This is on the job's start-up path, so it imports only the standard library and
:mod:`provisioner.run` (no spec loading, no pydantic): ``--env`` is a label here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from provisioner.cli.root import app, run_verb
from provisioner.core.errors import UsageError
from provisioner.core.units import parse_duration, parse_size
from provisioner.run import guard as guards
from provisioner.run import profile as prof
from provisioner.run import wrapper
from provisioner.run.metrics import Listener, Pushgateway, Sink, Textfile


@app.command("run", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})
def run_job(
    ctx: typer.Context,
    command: Annotated[list[str] | None, typer.Argument(help="the job's command, after --", show_default=False)] = None,
    job: Annotated[str, typer.Option("--job", "-j", help="the job's id in the spec")] = "",
    env: Annotated[str, typer.Option("--env", "-e", help="environment label", envvar="MEMPROV_ENV")] = "local",
    interval: Annotated[str, typer.Option("--interval", help="sampling interval (50ms to 60s)")] = "1s",
    history: Annotated[
        Path | None, typer.Option("--history", metavar="DIR", help="append the run to DIR/runs.jsonl", file_okay=False)
    ] = None,
    meta: Annotated[list[str] | None, typer.Option("--meta", metavar="KEY=VALUE", help="recorded with the run")] = None,
    limit: Annotated[
        str | None, typer.Option("--limit", metavar="SIZE", help="limit for guards (default: cgroup)")
    ] = None,
    guard: Annotated[
        list[str] | None, typer.Option("--guard", metavar="95%:SIGTERM", help="act at a share of the limit (exit 75)")
    ] = None,
    textfile: Annotated[
        Path | None, typer.Option("--textfile", metavar="DIR", help="node_exporter textfile directory", file_okay=False)
    ] = None,
    pushgateway: Annotated[str | None, typer.Option("--pushgateway", metavar="URL", help="push metrics there")] = None,
    listen: Annotated[str | None, typer.Option("--listen", metavar="HOST:PORT", help="serve /metrics there")] = None,
    cgroup: Annotated[
        Path | None, typer.Option("--cgroup", metavar="DIR", help="the job's own memory cgroup", hidden=True)
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", metavar="memray[,native]", help="Python job: record where memory is allocated"),
    ] = None,
) -> None:
    """Run a job, record its true peak memory in the history, publish metrics, guard its limit."""
    if not job:
        from provisioner.cli.console import error

        error("--job is required: memprov run --job ID [options] -- COMMAND [ARGS…]")
        raise typer.Exit(2)
    run_verb(
        ctx,
        lambda spec, color: run(
            spec=spec,
            color=color,
            job=job,
            env=env,
            interval=interval,
            history=history,
            meta=meta or [],
            limit=limit,
            guard=guard or [],
            textfile=textfile,
            pushgateway=pushgateway,
            listen=listen,
            cgroup=cgroup,
            command=command or [],
            profile=profile,
        ),
    )


_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,126}$")
_META_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")


def _sinks(textfile: Path | None, pushgateway: str | None, listen: str | None, job: str, env: str) -> list[Sink]:
    out: list[Sink] = []
    if textfile is not None:
        if not textfile.is_dir():
            raise UsageError(f"--textfile {textfile}: not a directory; give node_exporter's textfile directory")
        out.append(Textfile(textfile, job, env))
    if pushgateway is not None:
        if not re.match(r"^https?://[^/\s]+", pushgateway):
            raise UsageError(f"--pushgateway {pushgateway}: give an http:// or https:// URL")
        out.append(Pushgateway(pushgateway, job, env))
    if listen is not None:
        host, sep, port = listen.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"--listen {listen}: write HOST:PORT, e.g. 127.0.0.1:9184")
        try:
            out.append(Listener(host or "127.0.0.1", int(port)))
        except OSError as e:
            raise UsageError(f"--listen {listen}: cannot listen there ({e.strerror or e})") from None
    return out


def run(
    *,
    spec: Path,
    color: bool | None,
    job: str,
    env: str,
    interval: str,
    history: Path | None,
    meta: list[str],
    limit: str | None,
    guard: list[str],
    textfile: Path | None,
    pushgateway: str | None,
    listen: str | None,
    cgroup: Path | None,
    command: list[str],
    profile: str | None = None,
) -> int:
    if not _LABEL.match(job):
        raise UsageError(f"--job {job!r}: use the job's id from the spec (letters, digits, - _ . :)")
    if env and not _LABEL.match(env):
        raise UsageError(f"--env {env!r}: use an environment name (letters, digits, - _ . :)")
    if not command:
        raise UsageError("no command to run: memprov run --job ID [options] -- COMMAND [ARGS…]")
    try:
        seconds = parse_duration(interval)
    except ValueError as e:
        raise UsageError(f"--interval: {e}") from None
    if not 0.05 <= seconds <= 60:
        raise UsageError(f"--interval {interval}: sample between every 50ms and every 60s")
    pairs: dict[str, str] = {}
    for item in meta:
        key, sep, value = item.partition("=")
        if not sep or not _META_KEY.match(key):
            raise UsageError(f"--meta {item!r}: write KEY=VALUE, e.g. --meta records=500000")
        pairs[key] = value
    try:
        limit_bytes = parse_size(limit) if limit is not None else None
    except ValueError as e:
        raise UsageError(f"--limit {limit}: {e}") from None
    try:
        parsed = [guards.parse(g) for g in guard]
    except ValueError as e:
        raise UsageError(str(e)) from None
    if limit_bytes is not None and limit_bytes <= 0:
        raise UsageError("--limit must be above zero")
    if cgroup is not None and str(cgroup) != "none" and not cgroup.is_dir():
        raise UsageError(f"--cgroup {cgroup}: not a directory; give the job's memory cgroup directory")
    if history is not None and history.exists() and not history.is_dir():
        raise UsageError(f"--history {history}: not a directory")
    if parsed and any(g.share is not None for g in parsed) and limit_bytes is None:
        from provisioner.run import cgroup as cg

        group = cg.at(cgroup) if cgroup else cg.detect()
        if group is None or group.limit() is None:
            raise UsageError("--guard with a share needs a limit: the job's cgroup has none; give --limit SIZE")
    profiled = _profile(profile, command) if profile is not None else None
    opts = wrapper.Options(
        job=job,
        env=env,
        command=command,
        interval=seconds,
        history=history,
        meta=pairs,
        limit=limit_bytes,
        guards=parsed,
        sinks=_sinks(textfile, pushgateway, listen, job, env),
        cgroup=cgroup,
        profile=profiled,
    )
    return wrapper.execute(opts)


def _profile(text: str, command: list[str]) -> prof.Profile:
    """``--profile``, checked: a Python command, and memray importable here and in the job's interpreter."""
    try:
        parsed = prof.parse(text)
        interpreter, _ = prof.split(command)
    except ValueError as e:
        raise UsageError(f"--profile: {e}") from None
    if not prof.installed():
        raise UsageError(f"--profile memray: memray is not installed; {prof.INSTALL}")
    import os
    import shutil
    import subprocess
    import sys

    exe = shutil.which(interpreter[0]) or interpreter[0]
    if os.path.abspath(exe) != os.path.abspath(sys.executable):  # the job's Python (a venv?) must import it too
        try:
            found = subprocess.run([exe, "-c", "import memray"], capture_output=True, check=False)
        except OSError:  # no such interpreter: the run says so (exit 127)
            return parsed
        if found.returncode != 0:
            raise UsageError(
                f"--profile memray: the job's Python ({exe}) cannot import memray; "
                f"install it there: {exe} -m pip install 'memray>=1.11,<2'"
            )
    return parsed


# --- the fast path: `memprov run …` parsed without typer ------------------------------------------
# typer builds its parameters through pydantic at every invocation (~80 ms here); a job wrapper
# pays that on every run, so `memprov run` parses its own flags (same names as the typer command,
# which still serves --help and completion).
_VALUE_FLAGS = {
    "--job": "job", "-j": "job", "--env": "env", "-e": "env", "--interval": "interval", "--history": "history",
    "--limit": "limit", "--textfile": "textfile", "--pushgateway": "pushgateway", "--listen": "listen",
    "--cgroup": "cgroup", "--profile": "profile",
}  # fmt: skip
_LIST_FLAGS = {"--meta": "meta", "--guard": "guard"}
_PATHS = ("history", "textfile", "cgroup")


def parse_argv(argv: list[str]) -> dict[str, object]:
    """The keyword arguments of :func:`run` from ``memprov run``'s arguments; UsageError when wrong."""
    import os

    found: dict[str, object] = {key: None for key in _VALUE_FLAGS.values()}
    found |= {"env": os.environ.get("MEMPROV_ENV", "local"), "interval": "1s", "meta": [], "guard": []}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        key = _VALUE_FLAGS.get(name) or _LIST_FLAGS.get(name)
        if key is None:
            raise UsageError(f"no such option: {name} (see memprov run --help)")
        if not eq:
            if i + 1 >= len(argv):
                raise UsageError(f"option {name} requires a value")
            i += 1
            value = argv[i]
        if name in _LIST_FLAGS:
            found[key].append(value)  # type: ignore[attr-defined]
        else:
            found[key] = Path(value) if key in _PATHS else value
        i += 1
    found["command"] = argv[i:]
    if not found.get("job"):
        raise UsageError("--job is required: memprov run --job ID [options] -- COMMAND [ARGS…]")
    return found


def main_fast(argv: list[str]) -> int:
    """``memprov run`` without typer: the same flags, errors and exit codes as the typer command."""
    from provisioner.core.errors import EXIT_BUG, EXIT_FAILED, EXIT_INTERRUPTED, MemprovError

    def error(message: str, hint: str = "") -> None:  # the console module costs ~50 ms to import: only on error
        from provisioner.cli.console import error as say

        say(message, hint)

    try:
        kwargs = parse_argv(argv)
        return run(spec=Path("memprov.yaml"), color=None, **kwargs)  # type: ignore[arg-type]
    except MemprovError as e:
        error(e.render())
        return e.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        error(f"{where}{e.strerror or e}; check that path (a file where a directory belongs, permissions, space)")
        return EXIT_FAILED
    except Exception as e:  # a bug: as provisioner.cli.app._run says it
        import os

        if os.environ.get("MEMPROV_DEBUG"):
            raise
        error(
            f"internal error: {type(e).__name__}: {e}",
            "This is a bug in memprov. Re-run with MEMPROV_DEBUG=1 for the traceback and report it.",
        )
        return EXIT_BUG
