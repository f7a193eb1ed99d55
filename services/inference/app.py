"""In-process start of the inference service (used by `python -m services.inference` and tests)."""

from __future__ import annotations

from kernel import objectstore
from kernel.server import RunningService, serve
from kernel.settings import Settings
from services.inference.domain import InferenceDomain
from services.inference.predictor import Sessions
from services.inference.resolver import Resolver
from services.inference.servicer import InferenceServicer
from services.inference.settings import inference_settings
from trainyard.inference.v1 import inference_service_pb2_grpc

SERVICE_NAME = "trainyard.inference.v1.InferenceService"


async def start(settings: Settings) -> RunningService:
    cfg = inference_settings(settings)
    resolver = Resolver(cfg, objectstore.make_client(cfg), ttl_s=cfg.inference_resolve_ttl_s)
    sessions = Sessions(
        cfg.inference_cache_bytes,
        threads=cfg.inference_threads,
        window_s=cfg.inference_batch_window_ms / 1000,
        max_batch=cfg.inference_max_batch,
    )
    domain = InferenceDomain(cfg, resolver, sessions)
    server, port = await serve(
        cfg,
        [(inference_service_pb2_grpc.add_InferenceServiceServicer_to_server, InferenceServicer(domain), SERVICE_NAME)],
    )
    running = RunningService(server, port, closers=[resolver.close])
    running.domain = domain  # type: ignore[attr-defined]
    return running
