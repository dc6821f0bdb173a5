"""One reading of `--web.listen-address` for the exporter and the budgets sidecar, each in its own words.

The exporter's parser is the one kept: none of its outcomes changed.  Rows marked "sidecar"
changed for the budgets sidecar, whose parser took them and then bound the wrong port or failed.
"""

from __future__ import annotations

import pytest

from gpucost.budgets import server as sidecar
from gpucost.cli.exporter import main as exporter_main
from gpucost.config import parse_config
from gpucost.config import parse_listen_address as exporter_listen_address
from gpucost.errors import ConfigError, UserInputError
from gpucost.listen_address import ListenAddressError, parse_listen_address

ACCEPTED: list[tuple[str, tuple[str, int]]] = [
    ("127.0.0.1:9400", ("127.0.0.1", 9400)),
    ("0.0.0.0:65535", ("0.0.0.0", 65535)),
    ("localhost:0", ("localhost", 0)),
    ("[::1]:9400", ("::1", 9400)),
    ("[::]:9400", ("::", 9400)),
    ("::1:9400", ("::1", 9400)),  # the last colon ends the host
    (":9400", ("", 9400)),  # every interface
    (":09400", ("", 9400)),
]

BAD_PORT: list[str] = [
    "",
    ":",
    "9400",  # sidecar: read as :9400, though its own message asks for [host]:port
    "localhost",
    "localhost:",
    "[::1]",
    ":65536",  # sidecar: accepted, then a traceback when binding
    ":99999",  # sidecar: accepted, then a traceback when binding
    ":-1",
    ":+80",
    ": 80",
    ":80 ",
    ":0x50",
    ":²",  # sidecar: isdigit() took it and int() raised ValueError, a traceback
    ":٣",  # sidecar: an Arabic-Indic digit was read as port 3
    ":000080",  # sidecar: more than five digits was port 80
]

# sidecar: taken, then a failure to bind
BAD_HOST: list[str] = ["my host:80", "\t:80", "[::1 ]:80"]


@pytest.mark.parametrize(("address", "host_and_port"), ACCEPTED)
def test_listen_address_accepts(address: str, host_and_port: tuple[str, int]) -> None:
    assert parse_listen_address(address) == host_and_port
    assert exporter_listen_address(address) == host_and_port


@pytest.mark.parametrize("address", BAD_PORT)
def test_listen_address_rejects_a_missing_or_bad_port(address: str) -> None:
    with pytest.raises(ListenAddressError, match=r"^listen address must be \[host\]:port with port 0-65535$"):
        parse_listen_address(address)


@pytest.mark.parametrize("address", BAD_HOST)
def test_listen_address_rejects_a_host_with_spaces(address: str) -> None:
    with pytest.raises(ListenAddressError, match=r"^listen address host is not valid$"):
        parse_listen_address(address)


@pytest.mark.parametrize("address", [*BAD_PORT, *BAD_HOST])
def test_exporter_wording_names_the_flag_or_file(address: str) -> None:
    with pytest.raises(ConfigError) as caught:
        exporter_listen_address(address, "exporter.yaml")
    assert caught.value.one_line().startswith("exporter.yaml: listen address ")
    assert caught.value.one_line().endswith(f"(got {address!r})")


def test_exporter_flag_error_is_the_line_the_cli_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert exporter_main(["--web.listen-address=:99999"]) == 2
    assert capsys.readouterr().err == (
        "gpucost-exporter: --web.listen-address: listen address must be [host]:port with port 0-65535"
        " (got ':99999')\n"
    )


def test_exporter_config_file_error_names_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"web": {"listen_address": "localhost"}}, "exporter.yaml")
    assert caught.value.one_line() == (
        "exporter.yaml: web.listen_address: must be [host]:port with port 0-65535 (got 'localhost')"
    )


@pytest.mark.parametrize(
    ("address", "host_and_port"),
    [
        (":9836", ("0.0.0.0", 9836)),  # the sidecar binds 0.0.0.0 for "" (every interface), as the exporter does
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:9836", ("::1", 9836)),  # sidecar: the brackets stayed in the host
    ],
)
def test_sidecar_listen_address(address: str, host_and_port: tuple[str, int]) -> None:
    assert sidecar.parse_listen_address(address) == host_and_port


@pytest.mark.parametrize("address", [*BAD_PORT, *BAD_HOST])
def test_sidecar_keeps_its_own_wording(address: str) -> None:
    with pytest.raises(UserInputError) as caught:
        sidecar.parse_listen_address(address)
    assert caught.value.one_line() == (
        f"--web.listen-address: must be [host]:port, e.g. :9836 (got {address!r})"
    )
