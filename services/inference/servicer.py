"""Thin gRPC servicer: request -> InferenceDomain -> response."""

from __future__ import annotations

from services.inference.domain import InferenceDomain
from trainyard.inference.v1 import inference_service_pb2 as pb
from trainyard.inference.v1 import inference_service_pb2_grpc


class InferenceServicer(inference_service_pb2_grpc.InferenceServiceServicer):
    def __init__(self, domain: InferenceDomain) -> None:
        self.domain = domain

    async def Predict(self, request, context):
        return await self.domain.predict(request)

    async def GetModelInfo(self, request, context):
        return pb.GetModelInfoResponse(model=await self.domain.model_info(request.model_id))
