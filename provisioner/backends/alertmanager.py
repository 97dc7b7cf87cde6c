"""The ``alertmanager`` backend: the routing configuration (one ``alertmanager.yml``) and its secrets.

Targets: ``files`` (default: ``out/<env>/alertmanager/alertmanager.yml``) and ``alertmanager``:
a running Alertmanager whose config file memprov writes (after ``amtool check-config`` when
amtool is installed), whose secret files it writes from the environment (mode 0600, never
through a link: :mod:`~provisioner.backends.secret_files`; the plan shows a fingerprint, never
the value), and which it reloads with ``POST /-/reload``.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from provisioner.backends import secret_files
from provisioner.backends.files import FILES, FilesTarget, YamlFiles, atomic_write
from provisioner.backends.http import HttpApi
from provisioner.core import secrets, tools
from provisioner.core.errors import OperationError
from provisioner.core.types import SecretRef
from provisioner.plan.contract import Backend, TargetConfig, TargetType
from provisioner.plan.model import Action, Change, Resource
from provisioner.render import alertmanager as render
from provisioner.render import breaker
from provisioner.spec.resolved import ResolvedSpec

CONFIG_KEY = "alertmanager"
SECRET = "secret:"


class AlertmanagerConfig(TargetConfig):
    """``targets.alertmanager: {type: alertmanager, config_file, url, secrets_dir}``."""

    type: Literal["alertmanager"]
    config_file: str = Field(description="the alertmanager.yml that Alertmanager reads")
    url: str = Field(pattern=r"^https?://[^\s]+$")
    secrets_dir: str = Field(default=render.DEFAULT_SECRETS_DIR, description="where {env: NAME} secrets are written")
    token: SecretRef | None = None


class LiveTarget(FilesTarget):
    """The config file and secret files of a running Alertmanager; reloads it after changes."""

    STREAMS = False  # read_live adds the secret files

    type = "alertmanager"

    def __init__(self, codec: AlertmanagerBackend, config_file: Path, url: str, token: SecretRef | None) -> None:
        super().__init__(config_file.parent, str(config_file), codec)
        self.spec, self.secrets_dir = codec.spec, codec.secrets_dir
        self.config_name = config_file.name
        self.url = url
        self.token = token

    def describe(self) -> str:
        return f"Alertmanager {self.url} ({self.display})"

    def read_live(self, desired: Sequence[Resource]) -> list[Resource]:
        out = super().read_live(desired)
        for ref_path in _env_secrets(self.spec, self.secrets_dir):
            live = secret_files.read(Path(ref_path))
            if live is not None:
                text, mode = live
                body = {"fingerprint": _fingerprint(text), "mode": f"{mode:04o}"}
                out.append(Resource("secret", SECRET + ref_path, body, title=ref_path))
        return out

    def write(self, resource: Resource) -> None:
        if resource.key.startswith(SECRET):
            ref = _env_secrets(self.spec, self.secrets_dir)[resource.key.removeprefix(SECRET)]
            secret_files.write(Path(resource.key.removeprefix(SECRET)), secrets.resolve(ref) or "")
            return
        text = self.codec.serialise(resource)
        _check_config(text)
        atomic_write(self.root / self.config_name, text)

    def finish(self, desired: Sequence[Resource], changed: bool) -> None:
        if not changed:
            return
        api = HttpApi(self.url, what="Alertmanager", token=self.token)
        try:
            api.request("POST", "/-/reload")
        except OperationError as e:
            raise OperationError(f"{e}; the configuration was written but Alertmanager did not load it") from e
        finally:
            api.close()


def _check_config(text: str) -> None:
    """``amtool check-config`` on the text before it replaces a live configuration (when installed)."""
    try:
        tools.which("amtool")
    except OperationError:
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alertmanager.yml"
        path.write_text(text, encoding="utf-8")
        result = tools.run("amtool", "check-config", str(path))
    if result.returncode != 0:
        raise OperationError(
            "amtool check-config rejected the rendered configuration; nothing was written:\n"
            + (result.stdout + result.stderr).strip()
        )


def _env_secrets(spec: ResolvedSpec, secrets_dir: str) -> dict[str, SecretRef]:
    return {path: ref for path, ref in render.secret_refs(spec, secrets_dir).items() if ref.env}


def _fingerprint(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12]


def _live(backend: AlertmanagerBackend, config: AlertmanagerConfig) -> LiveTarget:
    path = Path(config.config_file)
    return LiveTarget(backend, path if path.is_absolute() else backend.spec.base_dir / path, config.url, config.token)


class AlertmanagerBackend(YamlFiles, Backend):
    name = "alertmanager"
    TARGETS: ClassVar[dict[str, TargetType[Any]]] = {
        "files": FILES,
        "alertmanager": TargetType(AlertmanagerConfig, _live),
    }
    FILE_GLOB = "*.yml"
    resource_kind = "alertmanager-config"

    @property
    def live(self) -> AlertmanagerConfig | None:
        """The running Alertmanager's settings, when the target is one (its secrets are written too)."""
        return self.config if isinstance(self.config, AlertmanagerConfig) else None

    @property
    def secrets_dir(self) -> str:
        return self.live.secrets_dir if self.live else render.DEFAULT_SECRETS_DIR

    def render(self) -> list[Resource]:
        if not self.spec.jobs_using(self.name):
            return []
        out = [
            Resource(
                self.resource_kind, CONFIG_KEY, render.config(self.spec, self.secrets_dir), title="alertmanager.yml"
            )
        ]
        if self.live:
            for path, ref in _env_secrets(self.spec, self.secrets_dir).items():
                value = secrets.resolve(ref, required=False)
                if value is not None:
                    out.append(
                        Resource(
                            "secret",
                            SECRET + path,
                            {"fingerprint": _fingerprint(value), "mode": f"{secret_files.MODE:04o}"},
                            title=f"{path} from ${ref.env}",
                        )
                    )
        return out

    def notes(self) -> list[str]:
        return breaker.notes(self.spec) + self._secret_notes()

    def _secret_notes(self) -> list[str]:
        refs = _env_secrets(self.spec, self.secrets_dir) if self.spec.jobs_using(self.name) else {}
        if not refs:
            return []
        if self.live:
            return [
                f"${ref.env} is not set: {path} will not be written, and notifications through it will fail"
                for path, ref in refs.items()
                if secrets.resolve(ref, required=False) is None
            ]
        names = ", ".join(f"${ref.env} -> {path}" for path, ref in refs.items())
        return [
            f"the configuration reads secrets from files ({names}); provide them there, or use an "
            "`alertmanager` target, which writes them from the environment"
        ]

    def filter_changes(self, changes: list[Change]) -> list[Change]:
        """Secret files are written, never deleted: another spec or a person may rely on them."""
        return [c for c in changes if not (c.kind == "secret" and c.action is Action.DELETE)]

    def filename(self, key: str) -> str:
        return Path(self.live.config_file).name if self.live else "alertmanager.yml"

    def key_for_path(self, relpath: str) -> str | None:
        return CONFIG_KEY if relpath == self.filename(CONFIG_KEY) else None
