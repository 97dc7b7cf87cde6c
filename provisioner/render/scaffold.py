"""``memprov init``: a new monitoring repository from the embedded example.

The example spec and environments ship inside the package (``_example``); in a development
checkout they are read from the repository itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from provisioner.core.errors import UsageError
from provisioner.core.yamlio import MAX_BYTES
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

JOBS_README = """\
# More jobs

memprov reads every `jobs/*.yaml` here as part of `memprov.yaml`: each file holds `jobs:` with
job ids as keys, written exactly as under `jobs:` in `memprov.yaml`, e.g. `jobs/vision.yaml`:

```yaml
jobs:
  image-caption:
    owner: vision
    model: {{name: vit-b16, version: "3.0"}}
    selector: {{namespace: batch, container: captioner}}
    memory: {{limit: 16Gi}}
```

Split the jobs by team (one file per team keeps reviews small and owners clear) or by size: each
file may hold at most {limit} (about 2,500 jobs written one per line), so a spec of 10,000 jobs is
ten files of 1,000. A job id may be defined only once across `memprov.yaml` and these files;
errors name the file and line. Environment overlays (`environments/<env>.yaml`) change these jobs
like any other. To read other files instead, list globs under `include:` in `memprov.yaml`
(`include: [jobs/*.yaml, teams/*/jobs.yaml]`); globs are relative to `memprov.yaml`.
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
        directory / "jobs" / "README.md": JOBS_README.format(limit=f"{MAX_BYTES // 2**20} MiB"),
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
