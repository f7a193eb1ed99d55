"""An empty resource id is a bad request (INVALID_ARGUMENT naming the field), not an unknown resource
(NOT_FOUND "dataset '' not found"): every RPC that takes one id, through the gateway, on real servers."""

from __future__ import annotations

import grpc
import pytest
from inprocess import InProcessPlatform
from test_sdk import platform_settings

from kernel.errors import field_violations
from trainyard.dataset.v1 import dataset_pb2
from trainyard.dataset.v1 import dataset_service_pb2 as ds
from trainyard.dataset.v1 import dataset_service_pb2_grpc as ds_grpc
from trainyard.modelzoo.v1 import modelzoo_service_pb2 as zoo
from trainyard.modelzoo.v1 import modelzoo_service_pb2_grpc as zoo_grpc
from trainyard.training.v1 import training_service_pb2 as tr
from trainyard.training.v1 import training_service_pb2_grpc as tr_grpc

pytestmark = [pytest.mark.integration]

# (stub attribute, RPC, request, field that must be named, server streaming)
CALLS = [
    ("datasets", "GetDataset", ds.GetDatasetRequest(), "dataset_id", False),
    ("datasets", "GetDatasetVersion", ds.GetDatasetVersionRequest(), "version_id", False),
    ("datasets", "PreviewCases", ds.PreviewCasesRequest(count=4), "dataset_id", False),
    ("datasets", "DeleteDataset", ds.DeleteDatasetRequest(), "dataset_id", False),
    ("datasets", "WatchImport", ds.WatchImportRequest(), "import_id", True),
    (
        "datasets",
        "ExportDatasetVersion",
        ds.ExportDatasetVersionRequest(format=dataset_pb2.EXPORT_FORMAT_COCO),
        "version_id",
        False,
    ),
    ("zoo", "GetModel", zoo.GetModelRequest(), "model_id", False),
    ("zoo", "ImportWeights", zoo.ImportWeightsRequest(), "model_id", False),
    ("zoo", "GetPreset", zoo.GetPresetRequest(), "preset_id", False),
    ("training", "GetTrainingTask", tr.GetTrainingTaskRequest(), "task_id", False),
    ("training", "WatchTrainingTask", tr.WatchTrainingTaskRequest(), "task_id", True),
    ("training", "CancelTrainingTask", tr.CancelTrainingTaskRequest(), "task_id", False),
    ("training", "ContinueTrainingTask", tr.ContinueTrainingTaskRequest(additional_epochs=1), "task_id", False),
    ("training", "GetTaskArtifacts", tr.GetTaskArtifactsRequest(), "task_id", False),
    ("training", "ListTrials", tr.ListTrialsRequest(), "task_id", False),
]


@pytest.fixture(scope="module")
def platform(nats_server, s3_server, tmp_path_factory, catalog_path):
    home = tmp_path_factory.mktemp("required-ids")
    catalog = catalog_path
    with InProcessPlatform(platform_settings(nats_server, s3_server, home), catalog, trainer=False) as p:
        yield p


@pytest.fixture(scope="module")
def stubs(platform):
    channel = grpc.insecure_channel(platform.gateway_address)
    yield {
        "datasets": ds_grpc.DatasetServiceStub(channel),
        "zoo": zoo_grpc.ModelZooServiceStub(channel),
        "training": tr_grpc.TrainingServiceStub(channel),
    }
    channel.close()


@pytest.mark.parametrize(("stub", "rpc", "request_", "field", "streaming"), CALLS, ids=[c[1] for c in CALLS])
def test_empty_id_is_invalid_argument_naming_the_field(platform, stubs, stub, rpc, request_, field, streaming):
    metadata = (("authorization", f"Bearer {platform.admin_token}"),)
    with pytest.raises(grpc.RpcError) as caught:
        response = getattr(stubs[stub], rpc)(request_, metadata=metadata, timeout=30)
        if streaming:
            list(response)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert field_violations(caught.value) == {field: "required"}


def test_continue_names_every_bad_field(platform, stubs):
    metadata = (("authorization", f"Bearer {platform.admin_token}"),)
    with pytest.raises(grpc.RpcError) as caught:
        stubs["training"].ContinueTrainingTask(tr.ContinueTrainingTaskRequest(), metadata=metadata, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {"task_id", "additional_epochs"}
