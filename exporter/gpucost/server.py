"""The exporter's HTTP endpoints: /metrics (configurable path), /healthz, /readyz.

The metrics handler serves bytes rendered at most once per snapshot; it never
calls NVML, the kubelet or the API server.  Optional TLS and basic auth come
from an exporter-toolkit style web config file (`--web.config.file`):

    tls_server_config: {cert_file: server.crt, key_file: server.key}
    basic_auth_users: {prometheus: <bcrypt hash>}
"""

from __future__ import annotations

import base64
import logging
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from gpucost.errors import ConfigError
from gpucost.metrics.render import CONTENT_TYPE, SnapshotRenderer
from gpucost.snapshot import ExporterSnapshot

__all__ = ["ExporterServer", "WebConfig", "load_web_config"]

log = logging.getLogger("gpucost.server")


@dataclass(frozen=True, slots=True)
class WebConfig:
    cert_file: str = ""
    key_file: str = ""
    basic_auth_users: Mapping[str, str] = field(default_factory=dict)


def load_web_config(path: str) -> WebConfig:
    """Parse a web config file; every problem is a ConfigError naming file, key and value."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigError(path, "", path, f"cannot read web config file: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, "", "", f"not valid YAML: {exc}") from None
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


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        log.debug("http %s", format % args)

    def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        users = self.server.web.basic_auth_users
        if not users:
            return True
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return self.server.check_password(user, password)

    def do_GET(self) -> None:
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="gpucost"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = self.path.split("?", 1)[0]
        owner = self.server.owner
        if path == owner.telemetry_path:
            self._send(200, owner.render_metrics(), CONTENT_TYPE)
        elif path == "/healthz":
            self._send(200, b"ok\n")
        elif path == "/readyz":
            problems = owner.readiness_problems()
            self._send(503 if problems else 200, ("\n".join(problems) or "ready").encode() + b"\n")
        elif path == "/":
            page = (f"<html><head><title>gpucost exporter</title></head><body><h1>gpucost exporter</h1>"
                    f"<p><a href='{owner.telemetry_path}'>Metrics</a> · <a href='/healthz'>healthz</a> · "
                    f"<a href='/readyz'>readyz</a></p></body></html>")
            self._send(200, page.encode(), "text/html; charset=utf-8")
        else:
            self._send(404, b"not found\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: ExporterServer
    web: WebConfig
    _password_cache: dict[tuple[str, str], bool]

    def check_password(self, user: str, password: str) -> bool:
        import bcrypt

        key = (user, password)
        cached = self._password_cache.get(key)
        if cached is not None:
            return cached
        hashed = self.web.basic_auth_users.get(user)
        # bcrypt is slow by design; cache the verdict so each scrape does not pay it again.
        ok = hashed is not None and bcrypt.checkpw(password.encode(), hashed.encode())
        if len(self._password_cache) > 256:
            self._password_cache.clear()
        self._password_cache[key] = ok
        return ok


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
        self._httpd = _Server((host or "0.0.0.0", port), _Handler)
        self._httpd.owner = self
        self._httpd.web = self.web
        self._httpd._password_cache = {}
        if self.web.cert_file:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.web.cert_file, self.web.key_file)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def render_metrics(self) -> bytes:
        body = self._renderer.render(self._snapshot())
        if self._process_registry is not None:
            body += generate_latest(self._process_registry)
        return body

    def readiness_problems(self) -> list[str]:
        return self._readiness()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="gpucost-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
