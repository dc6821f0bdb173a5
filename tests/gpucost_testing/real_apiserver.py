"""A real Kubernetes API server for the tests: etcd + kube-apiserver on 127.0.0.1.

`RealApiServer(workdir).start()` runs Debian's `etcd` (temp data dir, ephemeral client
and peer ports) and `kube-apiserver` v1.37.2 (built into .tools/bin by
tests/tools/build-kube-apiserver.sh) with certificates generated for this run, RBAC
authorization and ServiceAccount tokens, waits for /readyz and writes an admin
kubeconfig.  Nothing is faked: what the tests see is what a cluster's API server says.

There is no controller manager, scheduler or kubelet, so the helpers do their work by
hand: `create_namespace` also creates the namespace's `default` ServiceAccount (pods are
refused without it), pods are created already bound (`spec.nodeName`) and
`set_pod_phase` writes their status.  The API server's own periodic etcd compaction is
off (`--etcd-compaction-interval=0`) so that only `compact_etcd()` compacts, and a test
that needs a 410 Gone gets it exactly when it asks (see `compact_etcd` for how the
watch cache changes when that is).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import yaml

from gpucost_testing.processes import free_port
from gpucost_testing.real_apiserver_client import ApiError, KubeClient
from gpucost_testing.real_apiserver_pki import Pki, make_pki
from gpucost_testing.real_etcd import compact_etcd, etcd_revision, start_etcd
from gpucost_testing.servers import REPO_ROOT, ManagedProcess

__all__ = [
    "KUBE_VERSION",
    "ApiError",
    "KubeClient",
    "RealApiServer",
    "RealClusterUnavailable",
    "find_kube_apiserver",
    "service_account_user",
]

KUBE_VERSION = "v1.37.2"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/24"
_BUILD_HINT = "run `make bootstrap` (it builds .tools/bin/kube-apiserver with tests/tools/build-kube-apiserver.sh)"
# Cold start on a busy 2-core machine takes tens of seconds (RBAC bootstrap policy,
# priority-and-fairness defaults); shutting down drains in-flight requests and watches.
_READY_TIMEOUT = 180.0
_STOP_TIMEOUT = 30.0


class RealClusterUnavailable(RuntimeError):
    """kube-apiserver or etcd is not installed; the message says how to get it."""


def find_kube_apiserver(tools_bin: Path = REPO_ROOT / ".tools" / "bin") -> str:
    """The kube-apiserver binary: `tools_bin` (this checkout's .tools/bin) first, then PATH."""
    built = tools_bin / "kube-apiserver"
    if built.is_file() and os.access(built, os.X_OK):
        return str(built)
    on_path = shutil.which("kube-apiserver")
    if on_path is None:
        raise RealClusterUnavailable(f"kube-apiserver not found in {built.parent} nor on PATH; {_BUILD_HINT}")
    return on_path


def _find_etcd() -> str:
    path = shutil.which("etcd")
    if path is None:
        raise RealClusterUnavailable(
            "etcd not found on PATH; `make bootstrap` installs it (Debian package etcd-server)"
        )
    return path


def service_account_user(namespace: str, name: str) -> str:
    """The user name a ServiceAccount's tokens authenticate as."""
    return f"system:serviceaccount:{namespace}:{name}"


class RealApiServer:
    """etcd and kube-apiserver for one test session; see the module docstring."""

    def __init__(self, workdir: Path, *, watch_cache: bool = True, extra_args: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.watch_cache = watch_cache
        self.extra_args = tuple(extra_args)
        self.pki: Pki | None = None
        self.etcd: ManagedProcess | None = None
        self.apiserver: ManagedProcess | None = None
        self.port = 0
        self.kubeconfig = workdir / "admin.kubeconfig"
        self.startup_seconds = 0.0
        self._admin: KubeClient | None = None

    # --- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def etcd_url(self) -> str:
        assert self.etcd is not None, "start() first"
        return self.etcd.url

    @property
    def admin(self) -> KubeClient:
        """A client authenticated as the admin (group system:masters)."""
        assert self._admin is not None, "start() first"
        return self._admin

    def start(self) -> Self:
        apiserver_binary = find_kube_apiserver()
        etcd_binary = _find_etcd()
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki = make_pki(self.workdir / "pki")
        try:
            self.etcd = start_etcd(etcd_binary, self.workdir)
            self.port = free_port()
            self._admin = KubeClient(self.url, self.pki.ca_cert, client_cert=(self.pki.admin_cert, self.pki.admin_key))
            self._start_apiserver(apiserver_binary)
        except BaseException:
            self.stop()
            raise
        self._write_kubeconfig(self.kubeconfig, user={
            "client-certificate": str(self.pki.admin_cert),
            "client-key": str(self.pki.admin_key),
        })  # fmt: skip
        self.startup_seconds = time.monotonic() - started
        return self

    def _apiserver_argv(self, binary: str) -> list[str]:
        assert self.pki is not None and self.etcd is not None
        pki = self.pki
        return [
            binary,
            f"--etcd-servers={self.etcd.url}",
            "--etcd-compaction-interval=0",
            f"--watch-cache={str(self.watch_cache).lower()}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=Node,RBAC",
            "--anonymous-auth=false",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.service_account_public_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # The `kubernetes` Service's endpoints would be 127.0.0.1, which Endpoints
            # validation refuses; nothing in the tests routes through that Service.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            *self.extra_args,
        ]

    def _start_apiserver(self, binary: str) -> None:
        argv = self._apiserver_argv(binary)
        log = self.workdir / "kube-apiserver.log"
        self.apiserver = ManagedProcess("kube-apiserver", argv, log, port=self.port).start()
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.apiserver is not None

        def not_ready() -> str:
            try:
                answer = self.admin.request("GET", "/readyz")
            except ApiError as err:
                return f"HTTP {err.status}"
            except OSError as err:
                return str(err)
            return "" if answer == "ok" else f"readyz said {answer!r}"

        self.apiserver.wait_until(not_ready, f"{self.url}/readyz", _READY_TIMEOUT, interval=0.5)

    def restart_apiserver(self) -> float:
        """Stop kube-apiserver (SIGTERM, then kill) and start it again on the same port and etcd.

        Returns the seconds it was away: clients see connection errors for that long.
        """
        assert self.apiserver is not None, "start() first"
        went_down = time.monotonic()
        self.apiserver.stop(_STOP_TIMEOUT)
        self._start_apiserver(self.apiserver.argv[0])
        return time.monotonic() - went_down

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd: SIGTERM, wait, then SIGKILL. Idempotent."""
        if self.apiserver is not None:
            self.apiserver.stop(_STOP_TIMEOUT)
        if self.etcd is not None:
            self.etcd.stop(_STOP_TIMEOUT)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- kubeconfigs and clients ----------------------------------------------------------

    def _write_kubeconfig(self, path: Path, *, user: Mapping[str, str], namespace: str | None = None) -> Path:
        assert self.pki is not None
        context: dict[str, str] = {"cluster": "gpucost-test", "user": "user"}
        if namespace:
            context["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "gpucost-test",
                    "cluster": {"server": self.url, "certificate-authority": str(self.pki.ca_cert)},
                }
            ],
            "users": [{"name": "user", "user": dict(user)}],
            "contexts": [{"name": "gpucost-test", "context": context}],
            "current-context": "gpucost-test",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def token_kubeconfig(self, token: str, path: Path, *, namespace: str | None = None) -> Path:
        """Write a kubeconfig that authenticates with `token` (e.g. a ServiceAccount's) to `path`."""
        return self._write_kubeconfig(path, user={"token": token}, namespace=namespace)

    def client_for_token(self, token: str) -> KubeClient:
        assert self.pki is not None, "start() first"
        return KubeClient(self.url, self.pki.ca_cert, token=token)

    # --- objects -------------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.admin.get("/version")
        return answer

    def create_namespace(self, name: str, *, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Create namespace `name` and its `default` ServiceAccount (the controller manager's job in a cluster)."""
        namespace: dict[str, Any] = self.admin.post(
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels or {})}},
        )
        self.create_service_account(name, "default")
        return namespace

    def create_service_account(self, namespace: str, name: str) -> dict[str, Any]:
        body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
        try:
            account: dict[str, Any] = self.admin.post(f"/api/v1/namespaces/{namespace}/serviceaccounts", body)
        except ApiError as err:
            if err.status != 409:
                raise
            account = self.admin.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}")
        return account

    def create_node(self, name: str, *, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        """A Node object (no kubelet behind it): what the exporter reads instance type and region from."""
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": dict(labels or {})}}
        node: dict[str, Any] = self.admin.post("/api/v1/nodes", body)
        return node

    def create_pod(
        self,
        namespace: str,
        name: str,
        node_name: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        owner_references: Sequence[Mapping[str, Any]] = (),
        gpus: int = 0,
        gpu_resource: str = "nvidia.com/gpu",
    ) -> dict[str, Any]:
        """A pod already bound to `node_name` (there is no scheduler); `gpus` requests `gpu_resource`."""
        container: dict[str, Any] = {"name": "main", "image": "registry.invalid/gpucost-test:1"}
        if gpus:
            # Extended resources must be set as limits (requests default to them).
            container["resources"] = {"limits": {gpu_resource: str(gpus)}}
        metadata: dict[str, Any] = {"name": name, "labels": dict(labels or {}), "annotations": dict(annotations or {})}
        if owner_references:
            metadata["ownerReferences"] = [dict(reference) for reference in owner_references]
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": {"nodeName": node_name, "containers": [container]},
        }
        pod: dict[str, Any] = self.admin.post(f"/api/v1/namespaces/{namespace}/pods", body)
        return pod

    def set_pod_phase(self, namespace: str, name: str, phase: str) -> dict[str, Any]:
        """Write the pod's status.phase, as its kubelet would."""
        pod: dict[str, Any] = self.admin.merge_patch(
            f"/api/v1/namespaces/{namespace}/pods/{name}/status", {"status": {"phase": phase}}
        )
        return pod

    # --- identities and authorization -------------------------------------------------------

    def service_account_token(self, namespace: str, name: str, *, expiration_seconds: int = 3600) -> str:
        """A token for ServiceAccount namespace/name from the TokenRequest API (600 s at least)."""
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration_seconds},
        }
        answer = self.admin.post(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", body)
        return str(answer["status"]["token"])

    def can_i(
        self,
        user: str,
        verb: str,
        resource: str,
        namespace: str | None = None,
        *,
        group: str = "",
        subresource: str = "",
        groups: Sequence[str] = (),
    ) -> bool:
        """Whether the authorizer allows `user` to `verb` `resource`, asked with a SubjectAccessReview.

        A ServiceAccount user (`service_account_user(...)`) gets the groups its tokens carry,
        so bindings to system:serviceaccounts[:<namespace>] count as they do for real.
        """
        all_groups = list(groups)
        prefix = "system:serviceaccount:"
        if user.startswith(prefix):
            account_namespace = user.removeprefix(prefix).split(":", 1)[0]
            all_groups += [
                "system:serviceaccounts",
                f"system:serviceaccounts:{account_namespace}",
                "system:authenticated",
            ]
        attributes: dict[str, str] = {"verb": verb, "resource": resource, "group": group, "subresource": subresource}
        if namespace is not None:
            attributes["namespace"] = namespace
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": all_groups, "resourceAttributes": attributes},
        }
        answer = self.admin.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
        return bool(answer["status"].get("allowed", False))

    # --- etcd -------------------------------------------------------------------------------

    def etcd_revision(self) -> int:
        """etcd's current revision (what resourceVersions are made of)."""
        return etcd_revision(self.etcd_url)

    def compact_etcd(self) -> int:
        """Compact etcd so that a watch from any resourceVersion handed out so far is 410 Gone; the new revision.

        How, in gpucost_testing.real_etcd.compact_etcd.  With the watch cache on (the default,
        as in a cluster), the API server answers watches from memory and shows the compaction
        only once the cache is rebuilt, e.g. after `restart_apiserver()`; use
        `watch_cache=False` to see it at once.
        """
        return compact_etcd(self.etcd_url)
