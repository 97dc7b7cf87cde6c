"""``memprov init``: a new monitoring repository from the embedded example.

The example spec and environments ship inside the package (``_example``); in a development
checkout they are read from the repository itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from provisioner.core.errors import UsageError
from provisioner.render.templating import PACKAGE_TEMPLATES, REPO_TEMPLATES

PACKAGE_EXAMPLE = Path(__file__).resolve().parent.parent / "_example"
REPO_ROOT = Path(__file__).resolve().parent.parent.parent

MAKEFILE_SNIPPET = """\
# memprov targets; include from your Makefile with `include memprov.mk`.
MEMPROV ?= memprov
ENV ?= local

.PHONY: memprov-validate memprov-lint memprov-check memprov-plan memprov-apply
memprov-validate: ## validate the spec for every environment
\t$(MEMPROV) validate
memprov-lint: ## find common alerting mistakes
\t$(MEMPROV) lint
memprov-check: ## fail if committed dashboards are stale (CI, pre-commit)
\t$(MEMPROV) render --check
memprov-plan: ## what apply would change in $(ENV)
\t$(MEMPROV) plan --env $(ENV)
memprov-apply: ## apply to $(ENV) (asks for confirmation)
\t$(MEMPROV) apply --env $(ENV)
"""

TEMPLATES_README = """\
# Template overrides

memprov renders alert texts, notification messages and dashboard text from jinja2 templates.
To change one, copy it here under the same relative path (for example
`prometheus/annotations.yaml.j2`) and edit it; files here take precedence over the defaults
shipped with memprov. Templates use `[[ ... ]]` for memprov values, so that the `{{ ... }}` of
Prometheus and Alertmanager templating passes through unchanged.

Default templates: {names}
"""


def example_root() -> Path:
    return PACKAGE_EXAMPLE if (PACKAGE_EXAMPLE / "memprov.yaml").exists() else REPO_ROOT


def template_names() -> list[str]:

    root = PACKAGE_TEMPLATES if PACKAGE_TEMPLATES.is_dir() else REPO_TEMPLATES
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.j2"))


def scaffold(directory: Path, force: bool = False) -> list[Path]:
    """Create the repository layout; returns the files written."""
    spec = directory / "memprov.yaml"
    if spec.exists() and not force:
        raise UsageError(f"{spec} already exists; pass --force to overwrite it, or pick another directory")
    src = example_root()
    written: list[Path] = []
    (directory / "environments").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "memprov.yaml", spec)
    written.append(spec)
    for env_file in sorted((src / "environments").glob("*.yaml")):
        dest = directory / "environments" / env_file.name
        shutil.copyfile(env_file, dest)
        written.append(dest)
    extras = {
        directory / "templates" / "README.md": TEMPLATES_README.format(names=", ".join(template_names())),
        directory / "memprov.mk": MAKEFILE_SNIPPET,
        directory / ".gitignore": "out/\n",
    }
    for path, text in extras.items():
        if path.exists() and not force:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    (directory / "dashboards").mkdir(exist_ok=True)
    return written
