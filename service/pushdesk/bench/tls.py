"""A certificate for a push-service stand-in on 127.0.0.1, made for one run and trusted by it only.

The bench's TLS sink presents it; the processes the bench starts trust it through
`SSL_CERT_FILE` (OpenSSL's default verify paths, which `ssl.create_default_context` loads), and
`requests` (pywebpush's `webpush()`) through `REQUESTS_CA_BUNDLE`. Nothing is installed in the
system's trust store. The suite's TLS tests use the same certificate maker.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from ..secure_files import create_owner_only


def self_signed_certificate(directory: Path, hours: float = 12.0) -> tuple[Path, Path]:
    """Write `cert.pem` (a self-signed certificate for 127.0.0.1) and `key.pem` to
    `directory`; return their paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pushdesk test push service")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=hours))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    create_owner_only(key_file)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file
