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

__all__ = ["check_kubeconfig", "check_pod_resources_socket"]


def check_pod_resources_socket(path: str, file: str, key_path: str) -> None:
    """The kubelet socket must be an absolute path: gRPC reads `unix://relative` as a host name."""
    if not path.startswith("/"):
        raise ConfigError(file, key_path, path,
                          "must be an absolute path to the kubelet's socket, "
                          "e.g. /var/lib/kubelet/pod-resources/kubelet.sock")


def check_kubeconfig(path: str, file: str, key_path: str) -> None:
    """Read the kubeconfig as the Kubernetes client will, and name the first problem."""
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


def _named(document: Mapping[object, object], section: str, name: str) -> Mapping[object, object] | None:
    entries = document.get(section)
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            return entry
    return None
