"""``memprov run``'s work: flags become :class:`provisioner.run.wrapper.Options`, and the job runs.

This is on the job's start-up path, so it imports only the standard library and
:mod:`provisioner.run` (no pydantic, no spec validation): ``--env`` is a label here, and ``--job``
is checked against the job ids of the spec when there is one (:func:`spec_job_ids` reads them
without a YAML library where the file is plain block style, as memprov writes it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from provisioner.core import yamlio
from provisioner.core.errors import EXIT_BUG, EXIT_FAILED, EXIT_INTERRUPTED, MemprovError, SpecError, UsageError
from provisioner.core.secrets import REDACTOR
from provisioner.core.units import parse_duration, parse_size
from provisioner.run import cgroup as cg
from provisioner.run import guard as guards
from provisioner.run import profile as prof
from provisioner.run import wrapper
from provisioner.run.metrics import Listener, Pushgateway, Sink, Textfile
from provisioner.spec import includes

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
    linger: str | None = None,
) -> int:
    if not _LABEL.match(job):
        raise UsageError(f"--job {job!r}: use the job's id from the spec (letters, digits, - _ . :)")
    check_job(spec, job)
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
    setting = str(cgroup) if cgroup is not None else "auto"
    if setting not in ("auto", "none"):
        if not Path(setting).is_dir():
            raise UsageError(f"--cgroup {cgroup}: write auto, none, or the job's own memory cgroup directory")
        if cg.at(Path(setting)) is None:
            raise UsageError(f"--cgroup {cgroup}: not a memory cgroup (no memory.current, no memory.usage_in_bytes)")
    linger_s: float | None = None
    if linger is not None:
        if listen is None:
            raise UsageError("--linger is for --listen: how long to keep serving the final metrics after the run")
        try:
            linger_s = 0.0 if linger.strip() == "0" else parse_duration(linger)
        except ValueError as e:
            raise UsageError(f"--linger: {e}") from None
        if not 0 <= linger_s <= 3600:
            raise UsageError(f"--linger {linger}: give 0s to 1h")
    if history is not None and history.exists() and not history.is_dir():
        raise UsageError(f"--history {history}: not a directory")
    if parsed and any(g.share is not None for g in parsed) and limit_bytes is None:
        group = cg.at(Path(setting)) if setting not in ("auto", "none") else cg.detect() if setting == "auto" else None
        if group is None or group.effective_limit() is None:
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
        cgroup=setting,
        profile=profiled,
        linger=linger_s,
    )
    return wrapper.execute(opts)


def _warn(text: str) -> None:
    import sys

    print(f"memprov run: warning: {text}", file=sys.stderr, flush=True)


_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:(.*)$")
_KEY = re.compile(r"""^(?:"([^"\\]+)"|'([^']+)'|([^\s"'#:?&*!|>%@`{}\[\],-][^:#]*?|-[^\s:#][^:#]*?))\s*:(?:\s|$)""")


def spec_job_ids(text: str) -> list[str] | None:
    """The keys of the top-level ``jobs:`` block mapping of a spec, read line by line; None when
    the text is not that simple (flow style, anchors, merge keys, tabs): parse it with YAML then."""
    lines = text.splitlines()
    for n, line in enumerate(lines):
        m = _TOP_KEY.match(line)
        if not m or m.group(1) != "jobs":
            continue
        rest = m.group(2).split(" #")[0].strip()
        if rest and not rest.startswith("#"):
            return None  # jobs: {…} or an alias
        ids: list[str] = []
        indent: int | None = None
        for body in lines[n + 1 :]:
            stripped = body.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if "\t" in body[: len(body) - len(body.lstrip())]:
                return None
            depth = len(body) - len(body.lstrip(" "))
            if depth == 0:
                break
            if indent is None:
                indent = depth
            if depth > indent:
                continue
            if depth < indent:
                return None
            key = _KEY.match(stripped)
            if key is None or stripped.startswith("<<"):
                return None
            ids.append(next(g for g in key.groups() if g is not None).strip())
        return ids
    return None


def check_job(spec: Path, job: str) -> None:
    """Refuse a job id the spec does not have (exit 2, listing them); without a spec, warn."""
    if not spec.is_file():
        _warn(f"no spec at {spec}, so --job {job} is not checked against one (run where it is, or set MEMPROV_SPEC)")
        return
    try:
        text = spec.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        _warn(f"{spec}: cannot read it ({e}); --job {job} is not checked")
        return
    try:
        ids = _job_ids(spec, text)
        if _INCLUDE.search(text):  # include: globs
            paths, problems = includes.files(yamlio.loads(text, str(spec)), spec)
            if problems:
                raise SpecError(problems)
        else:  # the default jobs/*.yaml
            paths = sorted(p for p in spec.parent.glob("jobs/*.yaml") if p.is_file())
        for path in paths:
            ids += _job_ids(path, path.read_text(encoding="utf-8"))
    except SpecError as e:
        _warn(f"{spec} does not parse ({e.problems[0].message if e.problems else e}); --job {job} is not checked")
        return
    except (OSError, UnicodeDecodeError) as e:
        _warn(f"{spec}: cannot read its jobs files ({e}); --job {job} is not checked")
        return
    if job not in ids:
        listed = ", ".join(sorted(ids)) or "none"
        raise UsageError(f"--job {job}: {spec} has no such job; its jobs: {listed}")


_INCLUDE = re.compile(r"^include\s*:", re.MULTILINE)


def _job_ids(path: Path, text: str) -> list[str]:
    """The ids under ``jobs:`` of a spec or a jobs file: read line by line, else by the YAML parser."""
    ids = spec_job_ids(text)
    if ids is None:  # not plain block style: the YAML parser settles it
        data = yamlio.loads(text, str(path)).data
        jobs = data.get("jobs") if isinstance(data, dict) else None
        ids = [str(k) for k in jobs] if isinstance(jobs, dict) else []
    return ids


def _profile(text: str, command: list[str]) -> prof.Profile:
    """``--profile``, checked: a Python command, and memray importable here and in the job's interpreter."""
    try:
        parsed = prof.parse(text)
        interpreter, _ = prof.split(command)
    except ValueError as e:
        raise UsageError(f"--profile: {e}") from None
    if not prof.installed():
        raise UsageError(f"--profile memray: memray is not installed; {prof.INSTALL}")
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
    "--cgroup": "cgroup", "--profile": "profile", "--linger": "linger",
}  # fmt: skip
_LIST_FLAGS = {"--meta": "meta", "--guard": "guard"}
_PATHS = ("history", "textfile", "cgroup")


def parse_argv(argv: list[str]) -> dict[str, object]:
    """The keyword arguments of :func:`run` from ``memprov run``'s arguments; UsageError when wrong."""
    found: dict[str, object] = {key: None for key in _VALUE_FLAGS.values()}
    found |= {"env": os.environ.get("MEMPROV_ENV", "local"), "interval": "100ms", "meta": [], "guard": []}
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


def main_fast(argv: list[str], spec: Path | None = None) -> int:
    """``memprov run`` without typer: the same flags, errors and exit codes as the typer command (``spec``:
    a ``--spec`` given among them)."""

    def error(message: str, hint: str = "") -> None:  # as the CLI's console prints them, without rich (~50 ms)
        for line in message.splitlines() or [message]:
            print(REDACTOR(f"error: {line}" if not line.startswith(("error", " ")) else line), file=sys.stderr)
        if hint:
            print(REDACTOR(hint), file=sys.stderr)

    try:
        kwargs = parse_argv(argv)
        spec = spec or Path(os.environ.get("MEMPROV_SPEC") or "memprov.yaml")  # as the typer command's --spec
        return run(spec=spec, color=None, **kwargs)  # type: ignore[arg-type]
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
        if os.environ.get("MEMPROV_DEBUG"):
            raise
        error(
            f"internal error: {type(e).__name__}: {e}",
            "This is a bug in memprov. Re-run with MEMPROV_DEBUG=1 for the traceback and report it.",
        )
        return EXIT_BUG
