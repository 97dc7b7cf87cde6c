"""The README stays true: every `memprov …` command it shows parses with the real CLI, the files and
links it names exist, no table row is duplicated or garbled, and what it says of the example spec holds."""

from __future__ import annotations

import re
import shlex
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, memprov

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands() -> list[str]:
    out = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith("memprov "):
                out.append(line)
    return out


COMMANDS = _commands()


def test_the_readme_shows_commands() -> None:
    assert len(COMMANDS) >= 15
    assert any(c.startswith("memprov explain") for c in COMMANDS)


@pytest.mark.parametrize("line", COMMANDS)
def test_every_command_parses(line: str, tmp_path: Path) -> None:
    line = re.sub(r"<[^>]*>", "x", line.split(" > ")[0]).replace("…", "x")
    args = shlex.split(line)[1:]
    cut = args.index("--") if "--" in args else len(args)
    result = memprov(*args[:cut], "--help", cwd=tmp_path)  # parses every option, runs nothing
    assert result.returncode == 0, f"{line}: {result.stderr}"
    assert result.stdout.startswith("Usage: memprov ")


def test_named_files_and_links_exist() -> None:
    named = set(re.findall(r"`((?:docs|examples|scripts|tests|bench|environments|\.ci)/[\w./-]+)`", README))
    named |= {m for m in re.findall(r"\]\(([\w./-]+)\)", README) if not m.startswith("http")}
    named |= {"docs/compose.yaml", ".pre-commit-hooks.yaml", "examples/github/memprov.yml"}
    missing = sorted(n for n in named if not (ROOT / n.rstrip("/")).exists() and "<" not in n)
    assert not missing, missing


def test_no_duplicated_or_garbled_table_rows() -> None:
    rows = [line for line in README.splitlines() if line.startswith("| ") and not line.startswith("|---")]
    twice = [row for row, n in Counter(rows).items() if n > 1]
    assert not twice, twice
    garbled = [row for row in rows if re.search(r"\d ?%0|`\)0|\)00", row)]
    assert not garbled, garbled


def test_no_reference_to_documents_the_repository_does_not_have() -> None:
    for phrase in ("design document", "case study"):
        assert phrase not in README.lower()


def test_what_it_says_of_the_example_spec() -> None:
    spec = yaml.safe_load((ROOT / "memprov.yaml").read_text())
    runtimes = Counter(job["runtime"] for job in spec["jobs"].values())
    assert "three Kubernetes jobs" in README and runtimes["kubernetes"] == 3
    assert "a job on a VM run under\n`memprov run`" in README and runtimes["process"] == 1
    assert len(spec["jobs"]) == 4
