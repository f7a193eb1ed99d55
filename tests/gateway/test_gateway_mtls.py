"""Mutual TLS from the gateway to a service: a CA made with the openssl CLI signs the service's
server certificate and the gateway's client certificate; the service demands a client certificate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import grpc
import pytest
from test_gateway import ADMIN_TOKEN, INTERNAL_TOKEN, Seen, ZooBackend, bearer

from gateway.app import start
from gateway.settings import GatewaySettings
from kernel.server import serve
from kernel.settings import Settings
from trainyard.modelzoo.v1 import modelzoo_service_pb2, modelzoo_service_pb2_grpc

pytestmark = pytest.mark.integration


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(folder: Path) -> dict[str, Path]:
    p = {name: folder / name for name in ("ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key")}
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=trainyard-test-ca",
            "-keyout", str(p["ca.key"]), "-out", str(p["ca.pem"]))  # fmt: skip
    for who, cn, ext in (
        ("server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ("client", "gateway", "extendedKeyUsage=clientAuth"),
    ):
        csr, extfile = folder / f"{who}.csr", folder / f"{who}.ext"
        extfile.write_text(ext + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", str(p[f"{who}.key"]),
                "-out", str(csr))  # fmt: skip
        openssl("x509", "-req", "-in", str(csr), "-CA", str(p["ca.pem"]), "-CAkey", str(p["ca.key"]),
                "-CAcreateserial", "-days", "1", "-extfile", str(extfile), "-out", str(p[f"{who}.pem"]))  # fmt: skip
    return p


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
async def test_gateway_reaches_a_service_over_mutual_tls_only_with_its_certificate(tmp_path, database_url):
    pki = make_pki(tmp_path)
    seen = Seen()
    # The service side is the platform's own serve(), with the TLS settings every service reads.
    service_settings = Settings(
        listen="127.0.0.1:0",
        internal_token=INTERNAL_TOKEN,
        service_tls_cert_file=pki["server.pem"],
        service_tls_key_file=pki["server.key"],
        service_tls_client_ca_file=pki["ca.pem"],
    )
    server, port = await serve(
        service_settings,
        [(modelzoo_service_pb2_grpc.add_ModelZooServiceServicer_to_server, ZooBackend(seen), "zoo")],
    )
    base = {
        "listen": "127.0.0.1:0",
        "database_url": database_url,
        "bootstrap_token": ADMIN_TOKEN,
        "internal_token": INTERNAL_TOKEN,
        "modelzoo_address": f"127.0.0.1:{port}",
        "backend_tls_ca_file": pki["ca.pem"],
        "backend_tls_server_name": "localhost",
    }
    with_cert = await start(
        GatewaySettings(**base, backend_tls_cert_file=pki["client.pem"], backend_tls_key_file=pki["client.key"])
    )
    without_cert = await start(GatewaySettings(**base))
    try:
        async with grpc.aio.insecure_channel(with_cert.address) as channel:
            reply = await modelzoo_service_pb2_grpc.ModelZooServiceStub(channel).ListModels(
                modelzoo_service_pb2.ListModelsRequest(query="x"), metadata=bearer(ADMIN_TOKEN), timeout=10
            )
            assert reply.models[0].id == "tv/x" and seen.identities[-1].project == "default"
        async with grpc.aio.insecure_channel(without_cert.address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await modelzoo_service_pb2_grpc.ModelZooServiceStub(channel).ListModels(
                    modelzoo_service_pb2.ListModelsRequest(query="x"), metadata=bearer(ADMIN_TOKEN), timeout=10
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert len(seen.identities) == 1
    finally:
        await with_cert.stop()
        await without_cert.stop()
        await server.stop(0)


def test_backend_client_certificate_needs_a_ca():
    with pytest.raises(ValueError, match="BACKEND_TLS_CA_FILE"):
        GatewaySettings(backend_tls_cert_file=Path("c.pem"), backend_tls_key_file=Path("k.pem"))
