"""Start the recommendation service (in-process for tests, or from __main__)."""

from __future__ import annotations

from kernel.server import RunningService, serve
from kernel.settings import Settings
from services.recommend.servicer import RecommendationServicer
from trainyard.recommend.v1 import recommend_service_pb2_grpc

SERVICE_NAME = "trainyard.recommend.v1.RecommendationService"


async def start(settings: Settings) -> RunningService:
    servicer = RecommendationServicer(settings)
    server, port = await serve(
        settings, [(recommend_service_pb2_grpc.add_RecommendationServiceServicer_to_server, servicer, SERVICE_NAME)]
    )
    running = RunningService(server, port)
    running.servicer = servicer  # type: ignore[attr-defined] - in-process stacks wire training late
    return running
