"""A minimal HTTPS client for a test kube-apiserver: JSON requests and watch streams.

Plain `urllib` on purpose: the fixture must not depend on the optional extras, and the
tests need to see exactly what the server answered (status code, Status body, watch
ERROR events), which a full client library would turn into its own exceptions.
Authenticates with a client certificate (the admin) or a bearer token (a ServiceAccount).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["ApiError", "KubeClient"]


class ApiError(RuntimeError):
    """The API server answered an HTTP error; `status` is the code, `body` the decoded Status (or text)."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        message = body.get("message", body) if isinstance(body, dict) else body
        super().__init__(f"{method} {path}: HTTP {status}: {message}")
        self.status = status
        self.body = body


class KubeClient:
    """Requests against one API server URL, trusting only `ca_file`."""

    def __init__(
        self,
        base_url: str,
        ca_file: Path,
        *,
        client_cert: tuple[Path, Path] | None = None,
        token: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._token = token
        self._context = ssl.create_default_context(cafile=str(ca_file))
        if client_cert is not None:
            self._context.load_cert_chain(str(client_cert[0]), str(client_cert[1]))

    def _open(self, method: str, path: str, body: Any, content_type: str, timeout: float) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            return urllib.request.urlopen(request, timeout=timeout, context=self._context)
        except urllib.error.HTTPError as err:
            raw = err.read().decode(errors="replace")
            try:
                decoded: Any = json.loads(raw)
            except ValueError:
                decoded = raw
            raise ApiError(method, path, err.code, decoded) from None

    def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json") -> Any:
        """One request; the decoded JSON answer (text when it is not JSON). ApiError on HTTP >= 400."""
        with self._open(method, path, body, content_type, self.timeout) as response:
            raw = response.read().decode()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self.request("GET", path + ("?" + urllib.parse.urlencode(params) if params else ""))

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def merge_patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def watch(self, path: str, *, resource_version: str | None = None, timeout_seconds: int = 10) -> Iterator[Any]:
        """The watch events on collection `path`, as the server sends them, until it ends the stream.

        `timeout_seconds` is passed to the server, which closes the stream after it; an
        ERROR event (e.g. a Status with code 410 for a compacted resourceVersion) is
        yielded like any other, and an HTTP error before the stream starts is ApiError.
        """
        params = {"watch": "true", "timeoutSeconds": str(timeout_seconds)}
        if resource_version is not None:
            params["resourceVersion"] = resource_version
        url_path = path + "?" + urllib.parse.urlencode(params)
        with self._open("GET", url_path, None, "", timeout_seconds + self.timeout) as response:
            for line in response:
                if line.strip():
                    yield json.loads(line)
