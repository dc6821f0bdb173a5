"""Start-up checks of the Kubernetes settings that no retry can fix.

The kubelet socket and the API server may come up after the exporter, so their
absence is an outage the sources retry.  A relative socket path or a
kubeconfig that cannot be read, is not YAML or names no usable context is the
user's mistake: left to the sources it would be retried and logged every poll
for ever, so it ends the start (or `gpucost validate-config`) as a ConfigError.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gpucost.errors import ConfigError
from gpucost.yamlfields import load_yaml_file

__all__ = ["EXEC_API_VERSIONS", "check_kubeconfig", "check_pod_resources_socket"]


def check_pod_resources_socket(path: str, file: str, key_path: str) -> None:
    """The kubelet socket must be an absolute path: gRPC reads `unix://relative` as a host name."""
    if not path.startswith("/"):
        raise ConfigError(file, key_path, path,
                          "must be an absolute path to the kubelet's socket, "
                          "e.g. /var/lib/kubelet/pod-resources/kubelet.sock")


# The exec credential plugin versions lightkube speaks (it reads the token the plugin prints).
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1alpha1", "client.authentication.k8s.io/v1beta1")


def check_kubeconfig(path: str, file: str, key_path: str) -> None:
    """Read the kubeconfig as the exporter's client (lightkube) will, and name the first problem."""
    try:
        # The one hardened YAML reader: a non-UTF-8, deeply nested or alias-bomb kubeconfig is one line too.
        document = load_yaml_file(Path(path))
    except ConfigError as err:
        raise ConfigError(file, key_path, path, f"the kubeconfig is unusable: {err.problem}") from None
    if not isinstance(document, Mapping):
        raise ConfigError(file, key_path, path, "is not a kubeconfig (expected a YAML mapping)")
    current = document.get("current-context")
    if not isinstance(current, str) or not current:
        raise ConfigError(file, key_path, path, "the kubeconfig has no current-context")
    context = _named(document, "contexts", current)
    if context is None:
        raise ConfigError(file, key_path, path, f"the kubeconfig's current-context {current!r} is not in its contexts")
    details = context.get("context")
    cluster = details.get("cluster") if isinstance(details, Mapping) else None
    # The client tolerates a context without a user (no credentials), never one without its cluster.
    if not isinstance(cluster, str) or not cluster:
        raise ConfigError(file, key_path, path, f"the kubeconfig's context {current!r} names no cluster")
    if _named(document, "clusters", cluster) is None:
        raise ConfigError(file, key_path, path,
                          f"the kubeconfig's context {current!r} names cluster {cluster!r}, "
                          "which is not in its clusters")
    user = details.get("user") if isinstance(details, Mapping) else None
    if isinstance(user, str) and user:
        _check_user(document, user, current, path, file, key_path)


def _check_user(document: Mapping[object, object], user: str, context: str, path: str, file: str,
                key_path: str) -> None:
    """The context's user must exist and use a credential lightkube supports (else every request fails)."""
    entry = _named(document, "users", user)
    if entry is None:
        raise ConfigError(file, key_path, path,
                          f"the kubeconfig's context {context!r} names user {user!r}, which is not in its users")
    credentials = entry.get("user")
    if not isinstance(credentials, Mapping):
        return
    if "auth-provider" in credentials:
        raise ConfigError(file, key_path, path,
                          f"the kubeconfig's user {user!r} uses an auth-provider, which is not supported: "
                          "use a token, a client certificate or an exec credential plugin")
    plugin = credentials.get("exec")
    if isinstance(plugin, Mapping) and plugin.get("apiVersion") not in EXEC_API_VERSIONS:
        raise ConfigError(file, key_path, path,
                          f"the kubeconfig's user {user!r} has an exec plugin with apiVersion "
                          f"{plugin.get('apiVersion')!r}; supported: {', '.join(EXEC_API_VERSIONS)}")


def _named(document: Mapping[object, object], section: str, name: str) -> Mapping[object, object] | None:
    entries = document.get(section)
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            return entry
    return None
