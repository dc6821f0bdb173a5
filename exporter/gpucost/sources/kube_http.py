"""GETs against the Kubernetes API server whose bodies arrive as raw byte streams.

lightkube does the part a Kubernetes client must get right: the kubeconfig
(`KubeConfig.from_file`, current context) or the in-cluster service account
(`KubeConfig.from_service_account`: KUBERNETES_SERVICE_HOST/PORT, the CA file,
the token file re-read when the server answers 401 because the kubelet rotated
it), client certificates, bearer token, exec plugins and TLS, through its
httpx2 client.  Nothing here decodes a body: `ApiServerHttp.get` hands back
the response body as it arrives, in pieces of at most READ_CHUNK_BYTES, so the
caller can cut and prune it before the next piece is read.  A watch event is
handed over as soon as its bytes arrive; nothing waits to fill a piece.

Imported when the API server source starts (lightkube and httpx2 add about
4 MiB resident), never when gpucost is imported.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx2
import yaml
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import SERVICE_ACCOUNT, KubeConfig, SingleConfig
from lightkube.config.models import User
from lightkube.core.exceptions import ConfigError as LightkubeConfigError

from gpucost.errors import SourceUnavailable

__all__ = [
    "READ_CHUNK_BYTES",
    "RECOVERABLE_ERRORS",
    "SERVICE_ACCOUNT_DIR",
    "ApiServerHttp",
    "ApiStatusError",
    "StreamedBody",
]

SERVICE_ACCOUNT_DIR = SERVICE_ACCOUNT
# Responses are read in pieces of this size, each cut before the next is read.
READ_CHUNK_BYTES = 64 * 1024
# An error answer is a small Status object; more than this is not read.
MAX_ERROR_BODY_BYTES = 64 * 1024
CONNECT_TIMEOUT_SECONDS = 5.0

# Outside-world failures that mean "retry later": the network, TLS, HTTP, a token file
# missing mid-rotation (lightkube's ConfigError), a body that is not JSON.
RECOVERABLE_ERRORS: tuple[type[BaseException], ...] = (
    httpx2.HTTPError,
    httpx2.StreamError,
    LightkubeConfigError,
    OSError,
    ValueError,
    SourceUnavailable,
)


class ApiStatusError(SourceUnavailable):
    """The API server answered an HTTP error status (its Status message when it sent one)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"HTTP {status} {reason}: {message}".rstrip(": "))


class StreamedBody:
    """One response body, read as it arrives; `shutdown()` from another thread ends a blocked read."""

    def __init__(self, response: httpx2.Response) -> None:
        self._response = response

    def chunks(self) -> Iterator[bytes]:
        """The body's bytes as sent (no content decoding was asked for), in pieces of at most READ_CHUNK_BYTES."""
        for chunk in self._response.iter_raw():
            # httpcore reads at most 64 KiB from the socket at a time; slicing keeps the bound explicit.
            for start in range(0, len(chunk), READ_CHUNK_BYTES):
                yield chunk[start : start + READ_CHUNK_BYTES]

    def shutdown(self) -> None:
        """Shut the connection's socket: a read blocked in another thread returns at once (closing can wait)."""
        stream = self._response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            # socket.socket's own shutdown: SSLSocket.shutdown would also drop the TLS state under the reader.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        else:
            self._response.close()


class ApiServerHttp:
    """An httpx2 client configured by lightkube for one cluster and identity."""

    def __init__(self, client: httpx2.Client) -> None:
        self._client = client

    @classmethod
    def connect(cls, kubeconfig: str | None, in_cluster: bool,
                service_account_dir: str = SERVICE_ACCOUNT_DIR) -> ApiServerHttp:
        """Load the in-cluster config or `kubeconfig` (default ~/.kube/config); SourceUnavailable if unusable."""
        try:
            config = (KubeConfig.from_service_account(service_account_dir) if in_cluster
                      else KubeConfig.from_file(kubeconfig or "~/.kube/config")).get()
            if config is None:
                raise SourceUnavailable("the Kubernetes config selects no context")
            client = client_adapter.Client(_with_user(config), _connection_params())
        except (LightkubeConfigError, OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
            where = "in-cluster service account" if in_cluster else f"kubeconfig {kubeconfig or '~/.kube/config'}"
            raise SourceUnavailable(f"cannot load the Kubernetes client config ({where}): "
                                    f"{type(exc).__name__}: {exc}") from exc
        return cls(client)

    @contextmanager
    def get(self, path: str, params: Mapping[str, str], read_timeout: float) -> Iterator[StreamedBody]:
        """GET `path`; the body streams in the block; ApiStatusError for an HTTP error answer."""
        request = self._client.build_request(
            "GET", path, params=dict(params),
            # Raw bytes on the wire: a compressed body would expand past every bound above.
            headers={"Accept": "application/json", "Accept-Encoding": "identity"},
            timeout=httpx2.Timeout(read_timeout, connect=CONNECT_TIMEOUT_SECONDS),
        )
        response = self._client.send(request, stream=True)
        try:
            if response.status_code >= 400:
                raise _status_error(response)
            encoding = response.headers.get("Content-Encoding", "identity").lower()
            if encoding != "identity":
                raise SourceUnavailable(f"API server sent a {encoding} body although identity was asked for")
            yield StreamedBody(response)
        finally:
            response.close()

    def close(self) -> None:
        self._client.close()


def _connection_params() -> client_adapter.ConnectionParams:
    # trust_env off: proxies and CA bundles from the environment never redirect API server traffic,
    # as with the official client the exporter used before.
    timeout = httpx2.Timeout(30.0, connect=CONNECT_TIMEOUT_SECONDS)
    return client_adapter.ConnectionParams(timeout=timeout, trust_env=False)


def _with_user(config: SingleConfig) -> SingleConfig:
    """A context without a user means no credentials (as kubectl has it); lightkube needs an empty user."""
    return config if config.user is not None else config._replace(user=User())


def _status_error(response: httpx2.Response) -> ApiStatusError:
    body = bytearray()
    for chunk in response.iter_raw():
        body += chunk[: MAX_ERROR_BODY_BYTES - len(body)]
        if len(body) >= MAX_ERROR_BODY_BYTES:
            break
    message = ""
    try:
        status = json.loads(bytes(body))
        if isinstance(status, Mapping):
            message = str(status.get("message", ""))
    except ValueError:
        message = bytes(body[:300]).decode("utf-8", "replace").strip()
    return ApiStatusError(response.status_code, response.reason_phrase, message[:300])

