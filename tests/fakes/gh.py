#!/usr/bin/env python3
"""A stand-in for the ``gh`` CLI's ``gh api`` with the four GitHub REST calls examples/github/memprov-pr
makes, on a JSON state file (``FAKE_GH_STATE``): enough to run the workflow's steps without GitHub.

What it enforces, as GitHub documents it (docs.github.com/en/rest):
- ``GET repos/{owner}/{repo}/issues/{n}/comments``: the comments, oldest first ("List issue comments").
- ``POST repos/{owner}/{repo}/issues/{n}/comments`` with ``body``: a new comment with a new id
  ("Create an issue comment"); ``PATCH repos/{owner}/{repo}/issues/comments/{id}``: replaces its body,
  404 for an unknown id ("Update an issue comment").
- ``GET repos/{owner}/{repo}/commits/{sha}/pulls``: the pull requests associated with a commit
  ("List pull requests associated with a commit").
- ``gh api -F body=@FILE`` sends the file's content as ``body`` (gh's manual, "gh api": a value
  starting with @ is read from a file); the repository must be the one in ``GH_REPO``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if argv[:1] != ["api"]:
        print(f"fake gh: only `gh api` is implemented, not {argv[:1]}", file=sys.stderr)
        return 2
    method, fields, path = "GET", {}, ""
    args = iter(argv[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-F":
            key, _, value = next(args).partition("=")
            fields[key] = Path(value[1:]).read_text() if value.startswith("@") else value
        else:
            path = arg
    state_file = Path(os.environ["FAKE_GH_STATE"])
    state = json.loads(state_file.read_text())
    repo = os.environ["GH_REPO"]
    log = state.setdefault("calls", [])
    log.append([method, path])
    path = path.split("?", 1)[0]
    if m := re.fullmatch(rf"repos/{re.escape(repo)}/issues/(\d+)/comments", path):
        comments = state.setdefault("comments", {}).setdefault(m[1], [])
        if method == "GET":
            out: object = comments
        elif method == "POST":
            state["next_id"] = state.get("next_id", 1000) + 1
            comments.append({"id": state["next_id"], "body": fields["body"]})
            out = comments[-1]
        else:
            return _error(405)
    elif (m := re.fullmatch(rf"repos/{re.escape(repo)}/issues/comments/(\d+)", path)) and method == "PATCH":
        found = [c for cs in state.get("comments", {}).values() for c in cs if c["id"] == int(m[1])]
        if not found:
            return _error(404)
        found[0]["body"] = fields["body"]
        out = found[0]
    elif (m := re.fullmatch(rf"repos/{re.escape(repo)}/commits/([0-9a-f]{{40}})/pulls", path)) and method == "GET":
        out = [{"number": n} for n in state.get("pulls", {}).get(m[1], [])]
    else:
        return _error(404)
    state_file.write_text(json.dumps(state))
    print(json.dumps(out))
    return 0


def _error(status: int) -> int:
    print(f"gh: HTTP {status}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
