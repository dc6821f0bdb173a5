"""The per-run certificates are what kube-apiserver needs, from either generator."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from gpucost_testing.real_apiserver_pki import ADMIN_GROUP, ADMIN_USER, make_pki


def openssl(*args: str | Path) -> str:
    binary = shutil.which("openssl")
    assert binary is not None, "the openssl command is needed to check the certificates"
    return subprocess.run([binary, *map(str, args)], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("prefer_openssl", [False, True], ids=["cryptography", "openssl-cli"])
def test_the_pki_chains_to_its_ca_with_the_right_names_and_uses(tmp_path: Path, prefer_openssl: bool) -> None:
    pki = make_pki(tmp_path, prefer_openssl=prefer_openssl)

    assert "OK" in openssl("verify", "-CAfile", pki.ca_cert, "-purpose", "sslserver", pki.serving_cert)
    assert "OK" in openssl("verify", "-CAfile", pki.ca_cert, "-purpose", "sslclient", pki.admin_cert)
    # The serving certificate must not also be usable as a client one, and vice versa.
    with pytest.raises(subprocess.CalledProcessError):
        openssl("verify", "-CAfile", pki.ca_cert, "-purpose", "sslclient", pki.serving_cert)

    serving = openssl("x509", "-in", pki.serving_cert, "-noout", "-ext", "subjectAltName")
    assert "IP Address:127.0.0.1" in serving
    subject = openssl("x509", "-in", pki.admin_cert, "-noout", "-subject", "-nameopt", "sep_multiline")
    assert f"CN={ADMIN_USER}" in subject
    assert f"O={ADMIN_GROUP}" in subject

    public_from_private = openssl("pkey", "-in", pki.service_account_key, "-pubout")
    assert public_from_private == pki.service_account_public_key.read_text()
    assert pki.service_account_key.stat().st_mode & 0o077 == 0
