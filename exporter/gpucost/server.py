"""The exporter's HTTP endpoints: /metrics (configurable path), /healthz, /readyz, `/`.

The metrics handler serves bytes rendered at most once per snapshot and
format (text 0.0.4, or OpenMetrics 1.0.0 when the Accept header asks for it);
it never calls NVML, the kubelet or the API server.  Optional TLS and basic
auth come from an exporter-toolkit style web config file (`--web.config.file`):

    tls_server_config: {cert_file: server.crt, key_file: server.key}
    basic_auth_users: {prometheus: <bcrypt hash>}

/healthz and /readyz need no credentials (kubelet httpGet probes carry none)
but are served over TLS like everything else.  The serving itself (event loop,
timeouts, keep-alive) is `gpucost.httpserve`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client import generate_latest as generate_text
from prometheus_client.openmetrics import exposition as openmetrics_exposition

from gpucost.errors import ConfigError
from gpucost.httpauth import BasicAuth
from gpucost.httpserve import HttpServer, Request, Response
from gpucost.metrics.render import OPENMETRICS_EOF, ExpositionFormat, SnapshotRenderer, choose_format
from gpucost.snapshot import ExporterSnapshot
from gpucost.yamlfields import load_yaml_file

__all__ = ["ExporterServer", "WebConfig", "load_web_config"]

# prometheus_client leaves this one unannotated.
generate_openmetrics = cast(Callable[[CollectorRegistry], bytes], openmetrics_exposition.generate_latest)


@dataclass(frozen=True, slots=True)
class WebConfig:
    cert_file: str = ""
    key_file: str = ""
    basic_auth_users: Mapping[str, str] = field(default_factory=dict)


def load_web_config(path: str) -> WebConfig:
    """Parse a web config file; every problem is a ConfigError naming file, key and value."""
    raw = load_yaml_file(Path(path)) or {}
    if not isinstance(raw, dict):
        raise ConfigError(path, "", raw, "must be a mapping")
    for key in raw:
        if key not in ("tls_server_config", "basic_auth_users"):
            raise ConfigError(path, str(key), key, "unknown key (allowed: basic_auth_users, tls_server_config)")
    tls = raw.get("tls_server_config") or {}
    if not isinstance(tls, dict):
        raise ConfigError(path, "tls_server_config", tls, "must be a mapping")
    for key in tls:
        if key not in ("cert_file", "key_file"):
            raise ConfigError(path, f"tls_server_config.{key}", key, "unknown key (allowed: cert_file, key_file)")
    cert, key_file = str(tls.get("cert_file", "")), str(tls.get("key_file", ""))
    if bool(cert) != bool(key_file):
        raise ConfigError(path, "tls_server_config", tls, "cert_file and key_file must be set together")
    users = raw.get("basic_auth_users") or {}
    if not isinstance(users, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in users.items()):
        raise ConfigError(path, "basic_auth_users", users, "must map user names to bcrypt hashes")
    for user, hashed in users.items():
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError(path, f"basic_auth_users.{user}", hashed, "must be a bcrypt hash")
    base = Path(path).parent

    def resolve(name: str) -> str:
        return str(base / name) if name and not Path(name).is_absolute() else name

    return WebConfig(resolve(cert), resolve(key_file), dict(users))


# Paths a kubelet probes without credentials; everything else needs them when users are configured.
_PROBE_PATHS = ("/healthz", "/readyz")
_ALLOWED_METHODS = ("GET", "HEAD")


class ExporterServer:
    def __init__(
        self,
        host: str,
        port: int,
        snapshot: Callable[[], ExporterSnapshot],
        readiness_problems: Callable[[], list[str]],
        telemetry_path: str = "/metrics",
        web: WebConfig | None = None,
        include_process_metrics: bool = True,
    ) -> None:
        self.telemetry_path = telemetry_path
        self._snapshot = snapshot
        self._readiness = readiness_problems
        self._renderer = SnapshotRenderer()
        self._process_registry: CollectorRegistry | None = None
        if include_process_metrics:
            self._process_registry = CollectorRegistry(auto_describe=False)
            ProcessCollector(registry=self._process_registry)
        self.web = web or WebConfig()
        self._auth = BasicAuth(self.web.basic_auth_users)
        tls = _tls_context(self.web) if self.web.cert_file else None
        # Binds now: a port in use is an OSError here, for the caller to report.
        self._http = HttpServer(host or "0.0.0.0", port, self._handle, tls=tls)

    @property
    def port(self) -> int:
        return self._http.port

    def render_metrics(self, fmt: ExpositionFormat = ExpositionFormat.TEXT) -> bytes:
        """The whole exposition in `fmt` as one bytes object (the server itself writes the parts without joining)."""
        return b"".join(self._metrics_chunks(fmt))

    def readiness_problems(self) -> list[str]:
        return self._readiness()

    def start(self) -> None:
        self._http.start()

    def stop(self) -> None:
        self._http.stop()
        self._auth.close()

    def _metrics_chunks(self, fmt: ExpositionFormat) -> tuple[bytes | memoryview, ...]:
        body = self._renderer.render(self._snapshot(), fmt)
        if self._process_registry is None:
            return (body,)
        if fmt is ExpositionFormat.OPENMETRICS:
            # One document, one `# EOF`: the process families go before it, and bring their own.
            return memoryview(body)[: len(body) - len(OPENMETRICS_EOF)], generate_openmetrics(self._process_registry)
        return body, generate_text(self._process_registry)

    async def _handle(self, request: Request) -> Response:
        if request.method not in _ALLOWED_METHODS:
            return Response(405, b"method not allowed\n", headers=(("allow", ", ".join(_ALLOWED_METHODS)),))
        path = request.path
        if path not in _PROBE_PATHS and not await self._auth.allows(request.header("authorization")):
            return Response(401, headers=(("www-authenticate", 'Basic realm="gpucost"'),))
        if path == self.telemetry_path:
            fmt = choose_format(request.header("accept"))
            return Response(200, self._metrics_chunks(fmt), fmt.content_type, (("vary", "Accept"),))
        if path == "/healthz":
            return Response(200, b"ok\n")
        if path == "/readyz":
            problems = self.readiness_problems()
            return Response(503 if problems else 200, ("\n".join(problems) or "ready").encode() + b"\n")
        if path == "/":
            page = (f"<html><head><title>gpucost exporter</title></head><body><h1>gpucost exporter</h1>"
                    f"<p><a href='{self.telemetry_path}'>Metrics</a> · <a href='/healthz'>healthz</a> · "
                    f"<a href='/readyz'>readyz</a></p></body></html>")
            return Response(200, page.encode(), "text/html; charset=utf-8")
        return Response(404, b"not found\n")


def _tls_context(web: WebConfig) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(web.cert_file, web.key_file)
    return context
