"""The gateway's HTTP port (gateway/http.py) against the whole platform in-process: Connect JSON and binary,
client and server streams, the same authentication, roles, internal methods, rate limits, audit and error
details as the gRPC port; CORS off by default; the console's files with their security headers."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import struct
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from google.rpc import error_details_pb2
from inprocess import InProcessPlatform
from test_sdk import platform_settings

from gateway import http
from gateway.limits import RateLimiter
from services.dataset.samples import make_classification_archive
from trainyard.dataset.v1 import dataset_service_pb2 as ds

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def platform(nats_server, s3_server, tmp_path_factory, catalog_path):
    home = tmp_path_factory.mktemp("http")
    overrides = {"http_listen": "127.0.0.1:0"}
    with InProcessPlatform(
        platform_settings(nats_server, s3_server, home), catalog_path, trainer=False, gateway=overrides
    ) as p:
        yield p


def post(
    platform, path: str, body: bytes, content_type: str = "application/json", token: str | None = None, headers=None
):
    """(status, headers, body) of a POST to the HTTP port."""
    sent = {"Content-Type": content_type, **(headers or {})}
    token = platform.admin_token if token is None else token
    if token:
        sent["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(platform.http_url + path, data=body, headers=sent, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def call(platform, path: str, message: dict, **kw) -> tuple[int, dict]:
    status, _, body = post(platform, path, json.dumps(message).encode(), **kw)
    return status, json.loads(body)


def envelope(data: bytes, flags: int = 0) -> bytes:
    return struct.pack(">BI", flags, len(data)) + data


def envelopes(body: bytes) -> list[tuple[int, bytes]]:
    out, at = [], 0
    while at < len(body):
        flags, size = struct.unpack(">BI", body[at : at + 5])
        out.append((flags, body[at + 5 : at + 5 + size]))
        at += 5 + size
    return out


def violations(error: dict) -> dict[str, str]:
    found = {}
    for detail in error.get("details", []):
        if detail["type"] == "google.rpc.BadRequest":
            bad = error_details_pb2.BadRequest.FromString(base64.b64decode(detail["value"] + "=="))
            found.update({v.field: v.description for v in bad.field_violations})
    return found


LIST_MODELS = "/trainyard.modelzoo.v1.ModelZooService/ListModels"


def test_curl_style_json_call_lists_models(platform):
    status, body = call(platform, LIST_MODELS, {"page_size": 3})
    assert status == 200
    assert len(body["models"]) == 3 and body["nextPageToken"]
    assert {"id", "family", "taskTypes", "numParams"} <= set(body["models"][0])


def test_binary_connect_unary_matches_json(platform):
    from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mz

    request = mz.ListModelsRequest(page_size=2).SerializeToString()
    status, headers, body = post(platform, LIST_MODELS, request, content_type="application/proto")
    assert status == 200 and headers["content-type"] == "application/proto"
    models = mz.ListModelsResponse.FromString(body).models
    _, as_json = call(platform, LIST_MODELS, {"page_size": 2})
    assert [m.id for m in models] == [m["id"] for m in as_json["models"]]


def test_errors_carry_codes_and_field_violations(platform):
    status, error = call(platform, LIST_MODELS, {"page_size": -3})
    assert status == 400 and error["code"] == "invalid_argument"
    assert "page_size" in violations(error)
    status, error = call(platform, LIST_MODELS, {"pagesize": 3})
    assert status == 400 and error["code"] == "invalid_argument" and "pagesize" in error["message"]
    status, error = call(platform, "/trainyard.dataset.v1.DatasetService/GetDataset", {"dataset_id": "nope"})
    assert status == 404 and error["code"] == "not_found"


def test_same_authentication_roles_and_internal_methods(platform):
    status, error = call(platform, LIST_MODELS, {}, token="")
    assert status == 401 and error["code"] == "unauthenticated"
    status, error = call(platform, LIST_MODELS, {}, token="ty_nokey_0123456789abcdef0123")
    assert status == 401
    status, created = call(
        platform, "/trainyard.auth.v1.AuthService/CreateApiKey", {"name": "http-viewer", "role": "ROLE_VIEWER"}
    )
    assert status == 200, created
    viewer = created["token"]
    assert call(platform, LIST_MODELS, {"page_size": 1}, token=viewer)[0] == 200
    status, error = call(
        platform, "/trainyard.training.v1.TrainingService/CancelTrainingTask", {"task_id": "x"}, token=viewer
    )
    assert status == 403 and "needs editor" in error["message"]
    status, error = call(platform, "/trainyard.modelzoo.v1.ModelZooService/RegisterTrainedModel", {})
    assert status == 403 and "internal" in error["message"]
    # Audited like the gRPC port: the key creation above is in the project's log, by path.
    status, audit = call(platform, "/trainyard.auth.v1.AuthService/ListAuditEntries", {"page_size": 50})
    assert status == 200
    assert any(e["method"] == "/trainyard.auth.v1.AuthService/CreateApiKey" for e in audit["entries"])


def test_rate_limit_answers_429_with_retry_info(platform):
    gateway = platform.gateway
    kept = gateway.rate_limiter
    gateway.rate_limiter = RateLimiter(0.01, 2)
    try:
        codes = [call(platform, LIST_MODELS, {"page_size": 1})[0] for _ in range(3)]
        status, error = call(platform, LIST_MODELS, {"page_size": 1})
    finally:
        gateway.rate_limiter = kept
    assert codes[:2] == [200, 200] and status == 429
    assert error["code"] == "resource_exhausted"
    assert "google.rpc.RetryInfo" in [d["type"] for d in error["details"]]


def test_client_stream_upload_then_server_stream_watch(platform):
    archive = make_classification_archive(classes=("circle", "square"), per_class=6, size=24, seed=3)
    metadata = ds.CreateDatasetRequest(metadata=ds.CreateDatasetMetadata(name="http-upload", val_fraction=0.25))
    body = envelope(metadata.SerializeToString())
    for start in range(0, len(archive), 4096):
        body += envelope(ds.CreateDatasetRequest(chunk=archive[start : start + 4096]).SerializeToString())
    status, headers, answer = post(
        platform, "/trainyard.dataset.v1.DatasetService/CreateDataset", body, content_type="application/connect+proto"
    )
    assert status == 200 and headers["content-type"] == "application/connect+proto"
    (flags, data), (end_flags, end) = envelopes(answer)
    assert flags == 0 and end_flags == 2 and "error" not in json.loads(end)
    dataset = ds.CreateDatasetResponse.FromString(data).dataset
    assert dataset.latest_version.case_count == 12

    watch = envelope(json.dumps({"importId": dataset.latest_version.import_id}).encode())
    status, headers, answer = post(
        platform, "/trainyard.dataset.v1.DatasetService/WatchImport", watch, content_type="application/connect+json"
    )
    assert status == 200 and headers["content-type"] == "application/connect+json"
    frames = envelopes(answer)
    assert frames[-1][0] == 2 and "error" not in json.loads(frames[-1][1])
    states = [json.loads(data)["status"]["state"] for flags, data in frames[:-1]]
    assert states[-1] == "IMPORT_STATE_SUCCEEDED"

    # A stream's error comes in its end message, with the gRPC port's code.
    missing = envelope(json.dumps({"importId": "no-such-import"}).encode())
    status, _, answer = post(
        platform, "/trainyard.dataset.v1.DatasetService/WatchImport", missing, content_type="application/connect+json"
    )
    assert status == 200
    assert json.loads(envelopes(answer)[-1][1])["error"]["code"] == "not_found"


def test_grpc_web_binary(platform):
    from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mz

    body = envelope(mz.ListModelsRequest(page_size=1).SerializeToString())
    status, headers, answer = post(
        platform, LIST_MODELS, body, content_type="application/grpc-web+proto", headers={"X-Grpc-Web": "1"}
    )
    assert status == 200 and headers["content-type"].startswith("application/grpc-web")
    (flags, data), (trailer_flags, trailers) = envelopes(answer)
    assert len(mz.ListModelsResponse.FromString(data).models) == 1
    assert trailer_flags == 0x80 and b"grpc-status:0" in trailers.replace(b" ", b"")


def test_grpc_over_http2_is_pointed_to_the_grpc_port(platform):
    status, _, body = post(platform, LIST_MODELS, envelope(b""), content_type="application/grpc")
    assert status == 415 and b"gRPC port" in body


def test_cors_is_off_by_default_and_answers_configured_origins(platform):
    request = urllib.request.Request(
        platform.http_url + LIST_MODELS,
        method="OPTIONS",
        headers={"Origin": "http://elsewhere.test", "Access-Control-Request-Method": "POST"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            headers = response.headers
    except urllib.error.HTTPError as exc:
        headers = exc.headers
    assert "access-control-allow-origin" not in {k.lower() for k in headers}

    app = http.application(
        platform.gateway, read_max_bytes=1024, cors_origins=["http://console.test"], console_dir=None
    )
    sent = []

    async def preflight():
        scope = {
            "type": "http",
            "method": "OPTIONS",
            "path": LIST_MODELS,
            "headers": [
                (b"origin", b"http://console.test"),
                (b"access-control-request-method", b"POST"),
                (b"access-control-request-headers", b"authorization,content-type,connect-protocol-version"),
            ],
        }

        async def receive():
            return {"type": "http.request", "body": b""}

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)

    asyncio.run(preflight())
    start = dict(sent[0]["headers"])
    assert sent[0]["status"] == 200
    assert start[b"access-control-allow-origin"] == b"http://console.test"
    assert b"authorization" in start[b"access-control-allow-headers"].lower()


def test_console_files_are_served_with_a_strict_policy(platform):
    if not http.CONSOLE_DIR.is_dir():
        pytest.skip("console/dist is not built (make console)")
    with urllib.request.urlopen(platform.http_url + "/", timeout=10) as response:
        page = response.read().decode()
        policy = response.headers["content-security-policy"]
    assert "<title>trainyard" in page
    assert "default-src 'self'" in policy


def test_maintained_clients_from_node(platform, tmp_path):
    """@connectrpc/connect-node's Connect (JSON, binary) and gRPC-Web transports against the port."""
    node = shutil.which("node")
    root = Path(__file__).resolve().parents[2]
    if node is None or not (root / "node_modules" / "@connectrpc" / "connect-node").is_dir():
        pytest.skip("node or node_modules missing (npm ci at the repository root)")
    archive = make_classification_archive(classes=("a", "b"), per_class=4, size=16, seed=5)
    body = envelope(ds.CreateDatasetRequest(metadata=ds.CreateDatasetMetadata(name="node-watch")).SerializeToString())
    body += envelope(ds.CreateDatasetRequest(chunk=archive).SerializeToString())
    status, _, answer = post(
        platform, "/trainyard.dataset.v1.DatasetService/CreateDataset", body, content_type="application/connect+proto"
    )
    assert status == 200
    dataset = ds.CreateDatasetResponse.FromString(envelopes(answer)[0][1]).dataset
    env = {
        **os.environ,
        "TRAINYARD_HTTP_URL": platform.http_url,
        "TRAINYARD_TOKEN": platform.admin_token,
        "TRAINYARD_IMPORT_ID": dataset.latest_version.import_id,
    }
    run = subprocess.run(
        [node, "--test", str(root / "tests" / "node" / "gateway_http.test.mjs")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout
