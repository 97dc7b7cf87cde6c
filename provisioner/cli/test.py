"""``memprov test``: generate promtool unit tests per job and run them on the real rule engine."""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import typer

from provisioner.cli.console import Console
from provisioner.cli.root import EnvOpt, app, run_verb
from provisioner.core import tools
from provisioner.core.errors import EXIT_FAILED, EXIT_OK
from provisioner.core.yamlio import dumps


@app.command("test")
def test_rules(
    ctx: typer.Context,
    env: EnvOpt = "local",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="keep the generated files in DIR", file_okay=False)
    ] = None,
    job: Annotated[list[str] | None, typer.Option("--job", "-j", help="only these jobs")] = None,
) -> None:
    """Prove the rules with promtool: each alert fires on a synthetic surge/leak/step, silent when healthy."""
    run_verb(ctx, lambda spec, color: run(spec=spec, color=color, env=env, out=out, jobs=job or []))


def run(*, spec: Path, color: bool | None, env: str, out: Path | None, jobs: list[str]) -> int:
    from provisioner.backends.files import atomic_write
    from provisioner.render.prometheus import rules as prom
    from provisioner.render.prometheus import rulestest
    from provisioner.spec.loader import load

    resolved = load(spec, env)
    console = Console(color=color)
    selected = [j for j in resolved.jobs_using("prometheus") if not jobs or j.id in jobs]
    if not selected:
        console.line("No job renders Prometheus rules in this environment; nothing to test.", "yellow")
        return EXIT_OK
    with tempfile.TemporaryDirectory(prefix="memprov-test-") as tmp:
        root = out or Path(tmp)
        plans: list[tuple[str, str, str]] = []  # (job, kind, file)
        skipped: list[str] = []
        for job in selected:
            rendered = f"rendered/{prom.group_name(resolved, job)}.rules.yaml"
            atomic_write(root / rendered, dumps({"groups": prom.rule_groups(resolved, job)}))
            plans.append((job.id, "check", rendered))
            try:
                files = rulestest.test_files(resolved, job)
            except rulestest.Unsupported as e:
                skipped.append(f"{job.id}: {e}")
                continue
            for name, data in files.files.items():
                atomic_write(root / name, dumps(data))
            plans += [(job.id, "test", name) for name in files.tests]
            for sc in files.scenarios:
                fires = sorted({c.alert for c in sc.checks if c.firing})
                quiet = len([c for c in sc.checks if not c.firing])
                console.line(
                    f"  {job.id:<24} {sc.name:<8} fires: {', '.join(fires) or '—'}; {quiet} silence check(s)", "dim"
                )

        def one(item: tuple[str, str, str]) -> tuple[tuple[str, str, str], int, str]:
            _, kind, name = item
            args = ("check", "rules", name) if kind == "check" else ("test", "rules", name)
            result = tools.run("promtool", *args, cwd=root)
            return item, result.returncode, (result.stdout + result.stderr).strip()

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(one, plans))
        failed = 0
        for (job_id, kind, name), code, text in results:
            ok = code == 0
            failed += not ok
            label = "promtool check rules" if kind == "check" else "promtool test rules"
            console.line(f"{'✓' if ok else '✗'} {job_id}: {label} {name}", "green" if ok else "bold red")
            if not ok:
                for line in text.splitlines()[-60:]:
                    if line.strip():
                        console.line(f"    {line}", "red")
        for note in skipped:
            console.line(f"! not tested: {note}", "yellow")
        if out is not None:
            console.line(f"Test files kept in {out}; re-run with: cd {out} && promtool test rules *.test.yaml", "dim")
        if failed:
            console.line(f"{failed} of {len(results)} promtool run(s) failed.", "bold red")
            return EXIT_FAILED
        console.line(f"✓ {len(results)} promtool run(s) passed for {len(selected)} job(s) in {env}.", "green")
        return EXIT_OK
