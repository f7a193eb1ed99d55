"""Fetching pre-trained weights from the configured sources (no internet: a local HTTP server in the
publishers' URL layouts, tiny state dicts of the right shapes made here). Real S3 + SQL, the zoo's gRPC
servicer in-process.

torchvision's layout (https://download.pytorch.org/models/<name>-<sha256 prefix>.pth) is served from
the local base URL: the test's catalog points the model's URL there, under a name carrying the served
file's own hash prefix. The hub's layout (/<repo>/resolve/<rev>/<file>) is reached through
huggingface_hub with the zoo's hub endpoint set to the local server.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import socket
from pathlib import Path

import grpc
import pytest
from weights_server import PublisherServer

from kernel import objectstore
from kernel.errors import error_reason
from services.modelzoo.app import start
from trainyard.modelzoo.v1 import modelzoo_pb2, modelzoo_service_pb2_grpc
from trainyard.modelzoo.v1 import modelzoo_service_pb2 as pb

pytestmark = pytest.mark.integration

SQUEEZENET = "tv/squeezenet1_1.imagenet1k_v1"
REGNETX = "timm/regnetx_002.pycls_in1k"  # on the hub only (no download URL)
REGNETY = "timm/regnety_002.pycls_in1k"
S = modelzoo_pb2


def torch_bytes(state: dict) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def squeezenet_bytes() -> bytes:
    import torchvision

    return torch_bytes(torchvision.models.squeezenet1_1(weights=None).state_dict())


def timm_state(arch: str) -> dict:
    import timm

    return timm.create_model(arch, pretrained=False).state_dict()


def safetensors_bytes(state: dict) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in state.items()})


def catalog_with(catalog_path: Path, folder: Path, **urls: str) -> str:
    """A copy of the session catalog whose models (by id, with / and . as _) download from these URLs."""
    data = json.loads(catalog_path.read_text())
    by_key = {m["id"].replace("/", "_").replace(".", "_"): m for m in data["models"]}
    for key, url in urls.items():
        entry = by_key[key]
        entry["weights_url"] = url
        entry["weight_files"] = [url.rsplit("/", 1)[-1]]
    path = folder / "catalog.json"
    path.write_text(json.dumps(data))
    return str(path)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def serve(cfg):
    running = await start(cfg)
    channel = grpc.aio.insecure_channel(running.address)
    return running, channel, modelzoo_service_pb2_grpc.ModelZooServiceStub(channel)


def selection(*model_ids: str) -> pb.PullWeightsRequest:
    return pb.PullWeightsRequest(selection=S.WeightsSelection(model_ids=list(model_ids)))


async def test_pull_streams_progress_resumes_a_cut_download_follows_a_redirect_and_skips_a_dead_mirror(
    zoo_settings, catalog_path, tmp_path
):
    data = squeezenet_bytes()
    sha = hashlib.sha256(data).hexdigest()
    name = f"squeezenet1_1-{sha[:8]}.pth"
    cut = len(data) // 2
    with PublisherServer() as server:
        server.put(f"/cdn/{name}", data)
        server.misbehave(f"/models/{name}", redirect_to=f"/cdn/{name}")  # as GitHub releases redirect to their CDN
        server.misbehave(f"/cdn/{name}", cut_after=cut)
        cfg = zoo_settings.model_copy(
            update={
                "modelzoo_catalog": catalog_with(
                    catalog_path, tmp_path, tv_squeezenet1_1_imagenet1k_v1=f"{server.url}/models/{name}"
                ),
                "modelzoo_weight_sources": f"http://127.0.0.1:{closed_port()}/mirror,publishers",
                "modelzoo_download_attempts": 2,
                "modelzoo_download_timeout_s": 10,
            }
        )
        running, channel, stub = await serve(cfg)
        try:
            model = (await stub.GetModel(pb.GetModelRequest(model_id=SQUEEZENET))).model
            assert model.weight_status == S.WEIGHT_STATUS_IMPORTABLE and not model.HasField("weights")

            pulls = [r.pull async for r in stub.PullWeights(selection(SQUEEZENET))]
            states = [p.state for p in pulls]
            assert states[-1] == S.PULL_STATE_STORED and S.PULL_STATE_CHECKING in states, pulls
            downloading = [p.url for p in pulls if p.state == S.PULL_STATE_DOWNLOADING]
            assert f"{server.url}/models/{name}" in downloading, downloading  # after the dead mirror's URL
            final = pulls[-1]
            assert final.bytes_done == final.bytes_total == len(data) and final.url == f"{server.url}/models/{name}"
            assert final.weights.sha256 == sha and final.weights.size_bytes == len(data)
            assert list(final.for_model_ids) == [SQUEEZENET]
            # the redirect was followed, the cut body resumed with a Range from where it stopped
            ranges = server.ranges(f"/cdn/{name}")
            assert len(ranges) == 2 and ranges[0] == "", ranges
            resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
            assert 0 < resumed_at <= cut

            model = (await stub.GetModel(pb.GetModelRequest(model_id=SQUEEZENET))).model
            assert model.weight_status == S.WEIGHT_STATUS_IN_STORE and model.weights == final.weights
            assert model.weights_scope == S.WEIGHTS_SCOPE_PUBLIC
            s3 = objectstore.make_client(cfg)
            assert objectstore.get_bytes(s3, model.weights.bucket, model.weights.key) == data

            # again: nothing is fetched
            before = len(server.requests)
            again = [r.pull async for r in stub.PullWeights(selection(SQUEEZENET))]
            assert [p.state for p in again] == [S.PULL_STATE_ALREADY_IN_STORE] and len(server.requests) == before
        finally:
            await channel.close()
            await running.stop()


async def test_hub_files_come_through_huggingface_hub_and_their_etag_is_checked(zoo_settings, tmp_path):
    state = timm_state("regnetx_002")
    data = safetensors_bytes(state)
    sha = hashlib.sha256(data).hexdigest()
    with PublisherServer() as server:
        hub_url = server.put_hub(REGNETX, "model.safetensors", data)
        path = hub_url.removeprefix(server.url)
        server.misbehave(path, etag=hashlib.sha256(b"another file").hexdigest())
        cfg = zoo_settings.model_copy(
            update={"modelzoo_weight_sources": "publishers", "modelzoo_hf_endpoint": server.url}
        )
        running, channel, stub = await serve(cfg)
        try:
            # the bytes do not match the hub's sha256: refused; pytorch_model.bin is not on the hub either
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ImportWeights(pb.ImportWeightsRequest(model_id=REGNETX))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert error_reason(err.value) == "WEIGHTS_CHECKSUM_MISMATCH"
            assert hub_url in err.value.details() and "the hub's sha256" in err.value.details()
            assert "pytorch_model.bin: HTTP 404" in err.value.details()
            model = (await stub.GetModel(pb.GetModelRequest(model_id=REGNETX))).model
            assert model.weight_status == S.WEIGHT_STATUS_IMPORTABLE  # nothing was stored

            server.misbehave(path)  # the right ETag
            model = (await stub.ImportWeights(pb.ImportWeightsRequest(model_id=REGNETX))).model
            assert model.weight_status == S.WEIGHT_STATUS_IN_STORE and model.weights.sha256 == sha
            assert model.weights.key.endswith(".safetensors")  # the published bytes, in their own format
            stored = objectstore.get_bytes(objectstore.make_client(cfg), model.weights.bucket, model.weights.key)
        finally:
            await channel.close()
            await running.stop()
    # a trainer builds the network from the stored file
    import torch

    from trainer.models import build_timm

    weights = tmp_path / "weights"
    weights.write_bytes(stored)
    built = build_timm("regnetx_002", 3, weights)
    key = "stem.conv.weight"
    assert torch.equal(built.model.state_dict()[key], state[key])


async def test_a_failed_fetch_names_the_url_and_the_reason(zoo_settings, catalog_path, tmp_path):
    """404, a file whose hash is not the one in its name, a server that stalls, one that is not there:
    each named with its URL, as FAILED_PRECONDITION or UNAVAILABLE. No file gets as far as the check."""
    dead = f"http://127.0.0.1:{closed_port()}"
    with PublisherServer() as server:
        wrong = server.put("/models/shufflenetv2_x0.5-00000000.pth", b"PK\x03\x04 not what the name says")
        slow = server.put("/models/mnasnet0.5-1234567890.pth", b"PK\x03\x04 slow")
        server.misbehave("/models/mnasnet0.5-1234567890.pth", delay_s=2)
        urls = {
            "tv/squeezenet1_0.imagenet1k_v1": f"{server.url}/models/squeezenet1_0-deadbeef.pth",
            "tv/shufflenet_v2_x0_5.imagenet1k_v1": wrong,
            "tv/mnasnet0_5.imagenet1k_v1": slow,
            "tv/mobilenet_v3_small.imagenet1k_v1": f"{dead}/models/mobilenet_v3_small-047dcff4.pth",
        }
        catalog = catalog_with(
            catalog_path, tmp_path, **{k.replace("/", "_").replace(".", "_"): v for k, v in urls.items()}
        )
        cfg = zoo_settings.model_copy(
            update={
                "modelzoo_catalog": catalog,
                "modelzoo_weight_sources": "publishers",
                "modelzoo_download_timeout_s": 0.5,
                "modelzoo_download_attempts": 2,
                "modelzoo_max_concurrent_pulls": 4,
            }
        )
        running, channel, stub = await serve(cfg)
        try:
            pulls = [r.pull async for r in stub.PullWeights(selection(*urls))]
            final = {p.model_id: p for p in pulls if p.state == S.PULL_STATE_FAILED}
            assert set(final) == set(urls), pulls
            expected = {
                "tv/squeezenet1_0.imagenet1k_v1": ("FAILED_PRECONDITION", "WEIGHTS_NOT_FOUND_AT_SOURCES", "HTTP 404"),
                "tv/shufflenet_v2_x0_5.imagenet1k_v1": ("FAILED_PRECONDITION", "WEIGHTS_CHECKSUM_MISMATCH", "00000000"),
                "tv/mnasnet0_5.imagenet1k_v1": ("UNAVAILABLE", "WEIGHTS_SOURCE_UNAVAILABLE", "timed out"),
                "tv/mobilenet_v3_small.imagenet1k_v1": ("UNAVAILABLE", "WEIGHTS_SOURCE_UNAVAILABLE", "refused"),
            }
            for model_id, (code, reason, words) in expected.items():
                p = final[model_id]
                assert (p.error_code, p.error_reason) == (code, reason), p
                assert urls[model_id] in p.error_message and words in p.error_message, p.error_message
            # ImportWeights fails with the same code
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ImportWeights(pb.ImportWeightsRequest(model_id="tv/mobilenet_v3_small.imagenet1k_v1"))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE and dead in err.value.details()
            # bad selections
            for request, code in (
                (pb.PullWeightsRequest(), grpc.StatusCode.INVALID_ARGUMENT),
                (selection("tv/nope.v1"), grpc.StatusCode.NOT_FOUND),
                (selection("trained/x"), grpc.StatusCode.FAILED_PRECONDITION),
                (pb.PullWeightsRequest(selection=S.WeightsSelection(family="nope")), grpc.StatusCode.NOT_FOUND),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    [r async for r in stub.PullWeights(request)]
                assert err.value.code() == code, (request, err.value.details())
        finally:
            await channel.close()
            await running.stop()


async def test_a_mirror_and_an_s3_prefix_in_the_publishers_layout(zoo_settings, tmp_path):
    """The catalog as built (real hub ids): a mirror serves /<repo>/resolve/main/<file> under its base,
    an S3 prefix holds the same paths as keys; the chain takes the first that has the file."""
    x = torch_bytes(timm_state("regnetx_002"))
    y = safetensors_bytes(timm_state("regnety_002"))
    bucket, prefix = f"mirror-{secrets.token_hex(4)}", "weights/v1"
    s3 = objectstore.make_client(zoo_settings)
    s3.make_bucket(bucket)
    objectstore.put_bytes(s3, bucket, f"{prefix}/{REGNETY}/resolve/main/model.safetensors", y)
    with PublisherServer() as server:
        server.put(f"/mirror/{REGNETX}/resolve/main/pytorch_model.bin", x)  # no model.safetensors there: 404, next
        cfg = zoo_settings.model_copy(update={"modelzoo_weight_sources": f"s3://{bucket}/{prefix},{server.url}/mirror"})
        running, channel, stub = await serve(cfg)
        try:
            pulls = [r.pull async for r in stub.PullWeights(selection(REGNETX, REGNETY))]
            final = {p.model_id: p for p in pulls if p.state in (S.PULL_STATE_STORED, S.PULL_STATE_FAILED)}
            assert final[REGNETY].state == S.PULL_STATE_STORED, final[REGNETY]
            assert final[REGNETY].url == f"s3://{bucket}/{prefix}/{REGNETY}/resolve/main/model.safetensors"
            assert final[REGNETY].weights.sha256 == hashlib.sha256(y).hexdigest()
            assert final[REGNETX].state == S.PULL_STATE_STORED, final[REGNETX]
            assert final[REGNETX].url == f"{server.url}/mirror/{REGNETX}/resolve/main/pytorch_model.bin"
            assert final[REGNETX].weights.sha256 == hashlib.sha256(x).hexdigest()
            assert server.ranges(f"/mirror/{REGNETX}/resolve/main/model.safetensors") == [""]  # tried first
        finally:
            await channel.close()
            await running.stop()


def test_old_mirror_settings_migrate_to_the_source_chain(tmp_path):
    from services.modelzoo.settings import ModelZooSettings

    assert ModelZooSettings(modelzoo_weight_sources="").weight_sources == ("offline", "publishers")
    old = ModelZooSettings(modelzoo_weight_sources="", modelzoo_mirror=True, modelzoo_mirror_base_url="file:///srv/w")
    assert old.weight_sources == ("offline", "flat:file:///srv/w")
    assert ModelZooSettings(modelzoo_weight_sources="", modelzoo_mirror=True).weight_sources == (
        "offline",
        "publishers",
    )
    new = ModelZooSettings(modelzoo_weight_sources="offline, https://m.internal/w ,s3://b/p", modelzoo_mirror=True)
    assert new.weight_sources == ("offline", "https://m.internal/w", "s3://b/p")
    with pytest.raises(ValueError, match="ftp://x"):
        ModelZooSettings(modelzoo_weight_sources="offline,ftp://x")
