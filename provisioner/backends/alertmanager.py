"""The ``alertmanager`` backend: the routing configuration (one ``alertmanager.yml``) and its secrets.

Targets: ``files`` (default: ``out/<env>/alertmanager/alertmanager.yml``) and ``alertmanager``:
a running Alertmanager whose config file memprov writes (after ``amtool check-config`` when
amtool is installed), whose secret files it writes from the environment (mode 0600, never
through a link: :mod:`~provisioner.backends.secret_files`; the plan shows a fingerprint, never
the value), and which it reloads with ``POST /-/reload``. The live configuration is the one
Alertmanager runs: its ``alertmanager_config_hash`` metric is the MD5 of the file it loaded, so a
file written but not loaded (a reload that failed) is still to be created in the next plan; a file
edited since the plan is not overwritten (:mod:`provisioner.backends.live_files`).
"""

from __future__ import annotations

import hashlib
import struct
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from provisioner.backends import secret_files
from provisioner.backends.files import FILES, FilesConfig, YamlFiles, atomic_write
from provisioner.backends.http import HttpApi
from provisioner.backends.live_files import ServerFiles
from provisioner.core import secrets, tools
from provisioner.core.errors import OperationError
from provisioner.core.types import SecretRef
from provisioner.plan.contract import Backend, TargetConfig, TargetType
from provisioner.plan.model import Action, Change, Resource
from provisioner.render import alertmanager as render
from provisioner.render import alertmanager_modes as modes
from provisioner.render import breaker
from provisioner.spec.resolved import ResolvedSpec

CONFIG_KEY = "alertmanager"
SECRET = "secret:"
Mode = Literal["config", "fragment", "alertmanagerconfig"]
FILENAMES = {"config": "alertmanager.yml", "fragment": "memprov-{env}.fragment.yml",
             "alertmanagerconfig": "memprov-{env}.alertmanagerconfig.yml"}  # fmt: skip
KINDS = {"config": "alertmanager-config", "fragment": "alertmanager-fragment",
         "alertmanagerconfig": "AlertmanagerConfig"}  # fmt: skip


class AlertmanagerFilesConfig(FilesConfig):
    """``targets.alertmanager: {type: files, dir, mode, namespace, secret}``.

    ``mode``: ``config`` (default) a whole alertmanager.yml, for an Alertmanager that serves memprov alone (its
    default receiver drops every other alert); ``fragment`` a route, receivers and inhibit rules to merge into
    an existing configuration; ``alertmanagerconfig`` a prometheus-operator AlertmanagerConfig resource
    (``namespace``; secrets are keys of Kubernetes Secret ``secret`` there).
    """

    mode: Mode = "config"
    namespace: str = Field(default="monitoring", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    secret: str = Field(default="memprov-alertmanager", pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class AlertmanagerConfig(TargetConfig):
    """``targets.alertmanager: {type: alertmanager, config_file, url, secrets_dir}``."""

    type: Literal["alertmanager"]
    config_file: str = Field(description="the alertmanager.yml that Alertmanager reads")
    url: str = Field(pattern=r"^https?://[^\s]+$")
    secrets_dir: str = Field(default=render.DEFAULT_SECRETS_DIR, description="where {env: NAME} secrets are written")
    token: SecretRef | None = None


class LiveTarget(ServerFiles):
    """The config file and secret files of a running Alertmanager; reloads it after changes."""

    type = "alertmanager"
    SERVER = "Alertmanager"

    def __init__(self, codec: AlertmanagerBackend, config_file: Path, url: str, token: SecretRef | None) -> None:
        super().__init__(config_file.parent, str(config_file), codec, url, token)
        self.spec, self.secrets_dir = codec.spec, codec.secrets_dir
        self.config_name = config_file.name

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

    def _running(self, api: HttpApi) -> float | None:
        """``alertmanager_config_hash``: the configuration Alertmanager runs (None before its first load)."""
        for line in api.request("GET", "/metrics").text.splitlines():
            if line.startswith("alertmanager_config_hash "):
                return float(line.split()[1])
        return None

    def _on_disk(self) -> float | None:
        path = self.root / self.config_name
        return _config_hash(path.read_bytes()) if path.is_file() else None

    def unloaded(self, api: HttpApi, files: Sequence[Resource]) -> tuple[set[str], list[Resource]]:
        if any(r.key == CONFIG_KEY for r in files) and self._running(api) != self._on_disk():
            return {CONFIG_KEY}, []
        return set(), []

    def check_loaded(self, api: HttpApi, desired: Sequence[Resource], wait: float) -> str:
        deadline = time.monotonic() + wait
        while self._running(api) != self._on_disk():
            if time.monotonic() > deadline:
                return f"the configuration in {self.display}"
            time.sleep(0.2)
        return ""

    def write(self, resource: Resource) -> None:
        if resource.key.startswith(SECRET):
            ref = _env_secrets(self.spec, self.secrets_dir)[resource.key.removeprefix(SECRET)]
            secret_files.write(Path(resource.key.removeprefix(SECRET)), secrets.resolve(ref) or "")
            return
        text = self.codec.serialise(resource)
        _check_config(text)
        atomic_write(self.root / self.config_name, text)

    def create(self, desired: Resource, *, force: bool = False) -> None:
        if desired.key.startswith(SECRET):  # written from the environment: nothing to guard
            return self.write(desired)
        super().create(desired, force=force)

    def update(self, desired: Resource, live: Resource, *, force: bool = False) -> None:
        if desired.key.startswith(SECRET):
            return self.write(desired)
        super().update(desired, live, force=force)


def _config_hash(data: bytes) -> float:
    """Alertmanager's ``alertmanager_config_hash``: the first 6 bytes of the file's MD5, little-endian,
    as a float (``md5HashAsMetricValue`` in Alertmanager's config coordinator)."""
    return float(struct.unpack("<Q", hashlib.md5(data).digest()[:6] + b"\0\0")[0])


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
        "files": TargetType(AlertmanagerFilesConfig, FILES.build),
        "alertmanager": TargetType(AlertmanagerConfig, _live),
    }
    FILE_GLOB = "*.yml"
    resource_kind = "alertmanager-config"

    @property
    def live(self) -> AlertmanagerConfig | None:
        """The running Alertmanager's settings, when the target is one (its secrets are written too)."""
        return self.config if isinstance(self.config, AlertmanagerConfig) else None

    @property
    def mode(self) -> Mode:
        return self.config.mode if isinstance(self.config, AlertmanagerFilesConfig) else "config"

    def kind_of(self, key: str) -> str:
        return KINDS[self.mode]

    @property
    def secrets_dir(self) -> str:
        return self.live.secrets_dir if self.live else render.DEFAULT_SECRETS_DIR

    def render(self) -> list[Resource]:
        if not self.spec.jobs_using(self.name):
            return []
        if self.mode != "config":
            files = self.config if isinstance(self.config, AlertmanagerFilesConfig) else AlertmanagerFilesConfig()
            body = (
                modes.fragment(self.spec, self.secrets_dir)
                if self.mode == "fragment"
                else modes.alertmanager_config(self.spec, files.namespace, files.secret)
            )
            return [Resource(KINDS[self.mode], CONFIG_KEY, body, title=self.filename(CONFIG_KEY))]
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
        if self.mode == "fragment" and self.spec.jobs_using(self.name):
            return [
                f"merge {self.filename(CONFIG_KEY)} into your alertmanager.yml: its route first under route.routes "
                "(it matches memprov_env, so other alerts keep their routes and your default receiver), its "
                "receivers and inhibit_rules appended; it reads secrets from files as the config mode does"
            ]
        if self.mode == "alertmanagerconfig" and self.spec.jobs_using(self.name):
            files = self.config if isinstance(self.config, AlertmanagerFilesConfig) else AlertmanagerFilesConfig()
            keys = ", ".join(modes.secret_keys(self.spec))
            return [
                f"apply {self.filename(CONFIG_KEY)} in namespace {files.namespace} with Secret {files.secret} holding "
                f'keys {keys}; prometheus-operator adds a namespace="{files.namespace}" matcher to its route unless '
                "the Alertmanager sets alertmanagerConfigMatcherStrategy: {type: None}, so memprov's alerts must "
                "carry that namespace label (environment labels) or the strategy must be None"
            ]
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
        return Path(self.live.config_file).name if self.live else FILENAMES[self.mode].format(env=self.spec.env)

    def key_for_path(self, relpath: str) -> str | None:
        return CONFIG_KEY if relpath == self.filename(CONFIG_KEY) else None
