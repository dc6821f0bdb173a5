"""Device to pod attribution from the kubelet pod-resources API (gRPC over a unix socket).

`client` talks to the kubelet, `source` caches its answers on a timer with a
bounded staleness, `device_ids` maps device-plugin ids to NVML devices and
`attribution` turns both into `DeviceAllocation`s with shares.
"""

DEFAULT_SOCKET_PATH = "/var/lib/kubelet/pod-resources/kubelet.sock"

__all__ = ["DEFAULT_SOCKET_PATH"]
