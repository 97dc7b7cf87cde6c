"""Secret files that a live target writes from the environment: mode 0600, ours, never through a link.

A secret file's path comes from the spec and the environment file, which may arrive in a pull
request; what lies at that path may have been put there by someone else. So a secret is never
written through a symbolic link (``O_NOFOLLOW``: a link at the path is refused, not followed),
never into a file owned by another user or into anything but a regular file, and always ends up
with mode 0600 whatever the mode of the file it replaces (the new file is ``fchmod``-ed before
the secret is written into it, then renamed over the old one, so that readers never see half a
secret). Reading for the plan follows the same rules.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from provisioner.core.errors import OperationError

MODE = 0o600
_NOFOLLOW = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: a FIFO at the path never blocks us


def _open_checked(path: Path) -> int | None:
    """A read-only descriptor of the existing file at ``path`` after the checks; None when there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise OperationError(
                f"{path}: is a symbolic link; memprov never writes a secret through a link (it could point "
                "anywhere); remove the link, or point secrets_dir at a directory of real files"
            ) from None
        raise OperationError(f"{path}: cannot open the secret file ({e.strerror})") from None
    st = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(st.st_mode):
        problem = "is not a regular file; remove it"
    elif st.st_uid != os.geteuid():
        problem = (
            f"is owned by uid {st.st_uid}, not by the user memprov runs as (uid {os.geteuid()}); "
            "refusing to read or replace it: remove it or fix its owner"
        )
    if problem:
        os.close(fd)
        raise OperationError(f"{path}: {problem}")
    return fd


def read(path: Path) -> tuple[str, int] | None:
    """The secret's text and permission bits, or None when there is no file; refuses as :func:`write` does."""
    fd = _open_checked(path)
    if fd is None:
        return None
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as fh:
        return fh.read(), stat.S_IMODE(os.fstat(fh.fileno()).st_mode)


def write(path: Path, value: str) -> None:
    """Replace the secret at ``path`` with ``value``, mode 0600, atomically, after the checks."""
    existing = _open_checked(path)
    if existing is not None:
        os.close(existing)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".memprov-secret.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(value)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # replaces the name itself: a link put there since the check is not followed
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
