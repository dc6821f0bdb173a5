"""`--web.listen-address` values (`host:port`, `[::1]:port`, `:port`) to a host and a port.

One reading for every server gpucost starts; each command line wraps
`ListenAddressError` in its own one-line message naming the flag or file.
"""

from __future__ import annotations

__all__ = ["ListenAddressError", "parse_listen_address"]

_MAX_PORT = 65535


class ListenAddressError(ValueError):
    pass


def parse_listen_address(address: str) -> tuple[str, int]:
    """(host, port); the host is "" for `:port` (every interface) and has no IPv6 brackets."""
    host, separator, port_text = address.rpartition(":")
    # isascii: str.isdigit() also accepts digits such as "²" that int() refuses.
    port_ok = port_text.isascii() and port_text.isdigit() and len(port_text) <= len(str(_MAX_PORT))
    if not separator or not port_ok or not 0 <= int(port_text) <= _MAX_PORT:
        raise ListenAddressError(f"listen address must be [host]:port with port 0-{_MAX_PORT}")
    host = host.strip("[]")
    if any(character.isspace() for character in host):
        raise ListenAddressError("listen address host is not valid")
    return host, int(port_text)
