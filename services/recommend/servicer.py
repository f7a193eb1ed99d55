"""Thin gRPC servicer: request -> RecommendationDomain -> response."""

from __future__ import annotations

from kernel.settings import Settings
from services.recommend.clients import GrpcDatasetClient, GrpcModelZooClient, GrpcTrainingClient
from services.recommend.domain import RecommendationDomain
from trainyard.recommend.v1 import recommend_service_pb2_grpc


class RecommendationServicer(recommend_service_pb2_grpc.RecommendationServiceServicer):
    def __init__(self, settings: Settings, domain: RecommendationDomain | None = None) -> None:
        self.settings = settings
        self.domain = domain or RecommendationDomain(
            datasets=GrpcDatasetClient(settings),
            zoo=GrpcModelZooClient(settings),
            training=GrpcTrainingClient(settings) if settings.training_address else None,
        )

    def use_training(self, address: str) -> None:
        """Learn from the training service at address (for in-process stacks that start it after this one)."""
        self.domain.use_training(GrpcTrainingClient(self.settings, address))

    async def Recommend(self, request, context):
        return await self.domain.recommend(request)
