"""Throw-away certificates for a test kube-apiserver, generated per run.

`make_pki(directory)` writes a CA, a serving certificate for 127.0.0.1, an admin client
certificate in `system:masters` and a service-account signing key pair, all PEM.
It uses the `cryptography` package when it is importable (it is in the test virtualenv,
through google-auth and moto) and the `openssl` command line otherwise, so the fixture
works from a bare checkout too.  Keys are ECDSA P-256: quick to make on a busy 2-core
machine, and kube-apiserver accepts them for TLS and for signing tokens (ES256).
"""

from __future__ import annotations

import datetime
import importlib.util
import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ADMIN_GROUP", "ADMIN_USER", "SERVING_DNS_NAMES", "Pki", "make_pki"]

ADMIN_USER = "gpucost-test-admin"
# The group RBAC's bootstrap policy binds to cluster-admin without any RoleBinding.
ADMIN_GROUP = "system:masters"
# What in-cluster clients and the API server's own loopback use, besides 127.0.0.1.
SERVING_DNS_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
_VALIDITY = datetime.timedelta(days=2)


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files `make_pki` wrote."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    service_account_key: Path
    service_account_public_key: Path


def make_pki(directory: Path, *, prefer_openssl: bool = False) -> Pki:
    """Write a fresh PKI under `directory` (created if missing) and return its paths."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        service_account_key=directory / "sa.key",
        service_account_public_key=directory / "sa.pub",
    )
    if not prefer_openssl and importlib.util.find_spec("cryptography") is not None:
        _make_with_cryptography(pki)
    else:
        _make_with_openssl(pki)
    for private in (pki.ca_key, pki.serving_key, pki.admin_key, pki.service_account_key):
        private.chmod(0o600)
    return pki


# --- cryptography ------------------------------------------------------------------


def _make_with_cryptography(pki: Pki) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def new_key(path: Path) -> ec.EllipticCurvePrivateKey:
        key = ec.generate_private_key(ec.SECP256R1())
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return key

    def name(common_name: str, organization: str | None = None) -> x509.Name:
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if organization:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        return x509.Name(attributes)

    now = datetime.datetime.now(datetime.UTC)

    def builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            # A minute of slack: the API server and this process read the same clock, but
            # a certificate "not yet valid" by a second is a confusing failure.
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + _VALIDITY)
        )

    ca_key = new_key(pki.ca_key)
    ca_name = name("gpucost-test-ca")
    ca_cert = (
        builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    def leaf(
        cert_path: Path, key_path: Path, subject: x509.Name, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]
    ) -> None:
        key = new_key(key_path)
        certificate = builder(subject, ca_name, key).add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        )
        certificate = certificate.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if sans:
            certificate = certificate.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert_path.write_bytes(certificate.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))

    serving_sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    serving_sans += [x509.DNSName(dns) for dns in SERVING_DNS_NAMES]
    leaf(pki.serving_cert, pki.serving_key, name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, serving_sans)
    leaf(pki.admin_cert, pki.admin_key, name(ADMIN_USER, ADMIN_GROUP), ExtendedKeyUsageOID.CLIENT_AUTH, [])

    sa_key = new_key(pki.service_account_key)
    pki.service_account_public_key.write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


# --- openssl command line ------------------------------------------------------------


def _openssl(*args: str | Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise RuntimeError("neither the `cryptography` package nor the `openssl` command is available")
    result = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed: {result.stderr.strip()}")


def _make_with_openssl(pki: Pki) -> None:
    days = str(_VALIDITY.days)
    ec_key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc")
    _openssl(
        "req", "-x509", *ec_key, "-keyout", pki.ca_key, "-out", pki.ca_cert, "-days", days,
        "-subj", "/CN=gpucost-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,digitalSignature,keyCertSign,cRLSign",
    )  # fmt: skip
    sans = ",".join(["IP:127.0.0.1", *(f"DNS:{dns}" for dns in SERVING_DNS_NAMES)])
    leaves = (
        (
            pki.serving_cert,
            pki.serving_key,
            "/CN=kube-apiserver",
            ["extendedKeyUsage=serverAuth", f"subjectAltName={sans}"],
        ),
        (pki.admin_cert, pki.admin_key, f"/O={ADMIN_GROUP}/CN={ADMIN_USER}", ["extendedKeyUsage=clientAuth"]),
    )
    for cert, key, subject, extensions in leaves:
        # `req -x509 -CA` (OpenSSL 3) signs with the CA in one step, no CSR file to clean up.
        added = [
            arg for extension in ["basicConstraints=critical,CA:FALSE", *extensions] for arg in ("-addext", extension)
        ]
        _openssl(
            "req", "-x509", *ec_key, "-keyout", key, "-out", cert, "-days", days, "-subj", subject,
            "-CA", pki.ca_cert, "-CAkey", pki.ca_key, *added,
        )  # fmt: skip
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", pki.service_account_key)
    _openssl("pkey", "-in", pki.service_account_key, "-pubout", "-out", pki.service_account_public_key)
