"""Issue 16, cases 5, 6 and 8: secret files, an empty ``--checksum``, and one apply at a time per target.

Secret files are exercised on real files (and, end to end, with a real Alertmanager); the lock
with two real ``memprov apply`` processes, the first held at its confirmation prompt in a
pseudo-terminal, then killed with SIGKILL as a crash would.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provisioner.backends import secret_files
from provisioner.backends.files import directory_lock
from provisioner.core.errors import OperationError
from tests.helpers import example_repo, memprov
from tests.test_alertmanager import live_am  # noqa: F401 - the real Alertmanager fixture

VALUE = "https://hooks.slack.example/T0/B0/very-secret"


# --- 5. secret files ---------------------------------------------------------------------------------------
def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_an_existing_world_readable_secret_becomes_0600(tmp_path: Path) -> None:
    path = tmp_path / "SLACK_WEBHOOK_URL"
    path.write_text("old")
    path.chmod(0o644)
    assert secret_files.read(path) == ("old", 0o644)
    secret_files.write(path, VALUE)
    assert path.read_text() == VALUE and mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["SLACK_WEBHOOK_URL"]  # no temporary file left


def test_a_symlink_at_the_secret_path_is_refused_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "public.txt"
    elsewhere.write_text("public")
    elsewhere.chmod(0o644)
    link = tmp_path / "secrets" / "SLACK_WEBHOOK_URL"
    link.parent.mkdir()
    link.symlink_to(elsewhere)
    expected = f"{link}: is a symbolic link; memprov never writes a secret through a link"
    with pytest.raises(OperationError, match=expected):
        secret_files.write(link, VALUE)
    with pytest.raises(OperationError, match=expected):
        secret_files.read(link)  # the plan does not read through it either
    assert elsewhere.read_text() == "public" and link.is_symlink()
    dangling = tmp_path / "secrets" / "PD_ROUTING_KEY"
    dangling.symlink_to(tmp_path / "created-through-the-link")
    with pytest.raises(OperationError, match="is a symbolic link"):
        secret_files.write(dangling, VALUE)
    assert not (tmp_path / "created-through-the-link").exists()


def test_a_file_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # as root (CI): make one
        path = tmp_path / "SLACK_WEBHOOK_URL"
        path.write_text("theirs")
        os.chown(path, 65534, 65534)
    else:  # otherwise a file root owns
        path = Path("/etc/passwd")
    owner = os.stat(path).st_uid
    before = path.read_bytes()
    with pytest.raises(OperationError, match=rf"{path}: is owned by uid {owner}, not by the user memprov runs as"):
        secret_files.write(path, VALUE)
    assert path.read_bytes() == before


def test_a_hard_link_or_a_fifo_never_receives_the_secret(tmp_path: Path) -> None:
    public = tmp_path / "public.txt"
    public.write_text("public")
    secret = tmp_path / "SECRET"
    os.link(public, secret)
    secret_files.write(secret, VALUE)  # replaced, not written through: the other name keeps its content
    assert public.read_text() == "public" and secret.read_text() == VALUE and mode(secret) == 0o600
    fifo = tmp_path / "FIFO"
    os.mkfifo(fifo)
    with pytest.raises(OperationError, match=f"{fifo}: is not a regular file; remove it"):
        secret_files.write(fifo, VALUE)


@pytest.mark.integration
def test_live_alertmanager_secrets_are_0600_and_never_follow_links(
    live_am: tuple[str, Path, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    url, cfg, secrets_dir = live_am
    repo = example_repo(tmp_path / "repo")
    (repo / "environments" / "am.yaml").write_text(
        f"targets:\n  alertmanager: {{type: alertmanager, config_file: '{cfg}', url: '{url}', "
        f"secrets_dir: '{secrets_dir}'}}\n"
    )
    env = {"SLACK_WEBHOOK_URL": VALUE, "PD_ROUTING_KEY": "pd-very-secret"}
    secrets_dir.mkdir()
    (secrets_dir / "SLACK_WEBHOOK_URL").write_text(VALUE)
    (secrets_dir / "SLACK_WEBHOOK_URL").chmod(0o644)
    plan = memprov("plan", "--env", "am", "--backend", "alertmanager", cwd=repo, env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "~ secret secret:" in plan.stdout and "-mode: '0644'\n" in plan.stdout and "+mode: '0600'\n" in plan.stdout
    args = ("apply", "--env", "am", "--backend", "alertmanager", "--yes", "--force")
    applied = memprov(*args, cwd=repo, env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert mode(secrets_dir / "SLACK_WEBHOOK_URL") == 0o600 and mode(secrets_dir / "PD_ROUTING_KEY") == 0o600
    # someone replaces a secret by a link to a world-readable file: refused, nothing written there
    public = tmp_path / "public.txt"
    public.write_text("")
    (secrets_dir / "PD_ROUTING_KEY").unlink()
    (secrets_dir / "PD_ROUTING_KEY").symlink_to(public)
    again = memprov(*args, cwd=repo, env={**env, "PD_ROUTING_KEY": "rotated-very-secret"})
    assert again.returncode == 1
    assert f"{secrets_dir / 'PD_ROUTING_KEY'}: is a symbolic link" in again.stderr
    assert public.read_text() == "" and "very-secret" not in again.stdout + again.stderr


# --- 6. an empty --checksum -------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_checksum_is_an_error(tmp_path: Path, value: str) -> None:
    repo = example_repo(tmp_path / "repo")
    result = memprov("apply", "--env", "local", "--yes", "--checksum", value, cwd=repo)
    assert result.returncode == 2
    assert result.stderr == (
        "error: --checksum is empty (an unset CI variable?); pass the checksum that `memprov plan` printed, "
        "or leave the option out to apply without a pin\n"
    )
    assert not (repo / "out").exists()


# --- 8. one apply at a time, and what a killed one leaves ----------------------------------------------------
def _apply_at_prompt(repo: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``memprov apply`` in a pseudo-terminal, waiting at its confirmation prompt (its locks held)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "provisioner", "apply", "--env", "local"],
        cwd=repo,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "NO_COLOR": "1"},
    )
    os.close(follower)
    seen, deadline = b"", time.monotonic() + 60
    while b"Apply " not in seen and time.monotonic() < deadline:
        if select.select([leader], [], [], 1)[0]:
            seen += os.read(leader, 65536)
    assert b"Apply " in seen, seen.decode(errors="replace")
    return proc, leader


def test_a_second_apply_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo")
    assert memprov("apply", "--env", "local", "--yes", cwd=repo).returncode == 0
    other = example_repo(tmp_path / "other")  # a different spec writing to the same directory
    (other / "environments" / "local.yaml").write_text(f"output_dir: {repo / 'out' / 'local'}\n")
    text = (other / "memprov.yaml").read_text().replace("limit: 8Gi", "limit: 10Gi")
    (other / "memprov.yaml").write_text(text)
    (repo / "memprov.yaml").write_text((repo / "memprov.yaml").read_text().replace("limit: 8Gi", "limit: 12Gi"))
    first, leader = _apply_at_prompt(repo)
    try:
        second = memprov("apply", "--env", "local", "--yes", cwd=other)
        assert second.returncode == 1
        assert "out/local/alertmanager is locked by another memprov apply (pid " in second.stderr
        assert second.stderr.rstrip().endswith("nothing was changed. Wait for it to finish, then plan and apply again.")
        first.send_signal(signal.SIGKILL)  # a crash while holding the locks
        first.wait(timeout=30)
    finally:
        os.close(leader)
        if first.poll() is None:
            first.kill()
    stale = repo / "out" / "local" / "prometheus" / ".memprov-memprov-local-clv-daily.rules.yaml.k1ll3d.tmp"
    stale.write_text("half a file")
    third = memprov("apply", "--env", "local", "--yes", cwd=other)  # the kernel released the lock
    assert third.returncode == 0, third.stdout + third.stderr
    assert not stale.exists() and not list((repo / "out").rglob("*.tmp"))
    replan = memprov("plan", "--env", "local", "--detailed-exitcode", cwd=other)
    assert replan.returncode == 0, replan.stdout  # the directory matches the spec that applied last


def test_the_lock_names_the_directory(tmp_path: Path) -> None:
    with directory_lock(tmp_path, "out/x"), pytest.raises(OperationError) as info, directory_lock(tmp_path, "out/x"):
        pass  # pragma: no cover - the second lock is refused
    assert str(info.value) == (
        f"out/x is locked by another memprov apply (pid {os.getpid()}); nothing was changed. "
        "Wait for it to finish, then plan and apply again."
    )
    with directory_lock(tmp_path, "out/x"):  # released: taken again
        assert (tmp_path / ".memprov.lock").read_text() == f"{os.getpid()}\n"
    assert list(tmp_path.iterdir()) == []  # the lock file goes with the lock
    with directory_lock(tmp_path / "a" / "b", "out/a/b"):
        assert (tmp_path / "a" / "b").is_dir()
    assert not (tmp_path / "a").exists()  # directories made only for the lock go too
