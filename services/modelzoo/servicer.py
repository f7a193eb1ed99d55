"""Thin grpc.aio servicer: proto -> ModelZoo call (in a thread: SQL and S3 block) -> proto."""

from __future__ import annotations

import asyncio

from services.modelzoo import zoo
from services.modelzoo.zoo import FamilyView, ModelQuery, ModelView, ModelZoo
from trainyard.common.v1 import common_pb2
from trainyard.modelzoo.v1 import modelzoo_pb2, modelzoo_service_pb2, modelzoo_service_pb2_grpc

WEIGHT_STATUS = {
    zoo.IN_STORE: modelzoo_pb2.WEIGHT_STATUS_IN_STORE,
    zoo.IMPORTABLE: modelzoo_pb2.WEIGHT_STATUS_IMPORTABLE,
    zoo.UNAVAILABLE: modelzoo_pb2.WEIGHT_STATUS_UNAVAILABLE,
}
TRAINING_MODES = {
    "general": modelzoo_pb2.TRAINING_MODE_GENERAL,
    "specialized": modelzoo_pb2.TRAINING_MODE_SPECIALIZED,
    "retraining": modelzoo_pb2.TRAINING_MODE_RETRAINING,
}


def model_to_proto(view: ModelView) -> modelzoo_pb2.Model:
    m = view.model
    out = modelzoo_pb2.Model(
        id=m.id,
        family=m.family,
        variant=m.variant,
        task_types=[zoo.TASK_TYPE_NUMBERS[t] for t in m.task_types],
        architecture=m.architecture,
        library=m.library,
        pretrain_dataset=m.pretrain_dataset,
        pretrain_tag=m.pretrain_tag,
        license=m.license,
        num_params=m.num_params,
        gflops=m.gflops,
        default_input_size=m.default_input_size,
        mean=list(m.mean),
        std=list(m.std),
        reference_metrics=[
            common_pb2.Metric(name=x.name, value=x.value, dataset=x.dataset, source=x.source)
            for x in m.reference_metrics
        ],
        weight_status=WEIGHT_STATUS[view.weight_status],
        training_modes=[TRAINING_MODES[t] for t in m.training_modes],
        pretrained_num_classes=m.pretrained_num_classes,
        source_url=m.source_url,
    )
    if view.weights is not None:
        w = view.weights
        out.weights.CopyFrom(common_pb2.ObjectRef(bucket=w.bucket, key=w.key, sha256=w.sha256, size_bytes=w.size_bytes))
    return out


def family_to_proto(view: FamilyView) -> modelzoo_pb2.ModelFamily:
    return modelzoo_pb2.ModelFamily(
        name=view.family.name,
        description=view.family.description,
        task_types=[zoo.TASK_TYPE_NUMBERS[t] for t in view.task_types],
        variant_count=view.variant_count,
        weights_in_store_count=view.weights_in_store_count,
    )


class ModelZooServicer(modelzoo_service_pb2_grpc.ModelZooServiceServicer):
    def __init__(self, zoo_: ModelZoo) -> None:
        self.zoo = zoo_

    async def ListModelFamilies(self, request, context):
        families, token = await asyncio.to_thread(
            self.zoo.list_families, request.task_type, request.page_size, request.page_token
        )
        return modelzoo_service_pb2.ListModelFamiliesResponse(
            families=[family_to_proto(f) for f in families], next_page_token=token
        )

    async def ListModels(self, request, context):
        query = ModelQuery(
            task_type=request.task_type,
            family=request.family,
            pretrain_dataset=request.pretrain_dataset,
            max_params=request.max_params,
            max_gflops=request.max_gflops,
            weights_in_store=request.weights_in_store,
            query=request.query,
        )
        models, token, total = await asyncio.to_thread(
            self.zoo.list_models, query, request.page_size, request.page_token
        )
        return modelzoo_service_pb2.ListModelsResponse(
            models=[model_to_proto(m) for m in models], next_page_token=token, total_size=total
        )

    async def GetModel(self, request, context):
        view = await asyncio.to_thread(self.zoo.get_model, request.model_id)
        return modelzoo_service_pb2.GetModelResponse(model=model_to_proto(view))

    async def ImportWeights(self, request, context):
        view = await asyncio.to_thread(self.zoo.import_weights, request.model_id)
        return modelzoo_service_pb2.ImportWeightsResponse(model=model_to_proto(view))
