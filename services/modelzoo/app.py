"""In-process start of the model zoo service (tests) and the body of `python -m services.modelzoo`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from kernel import objectstore
from kernel.db import make_engine, migrate
from kernel.server import RunningService, serve
from kernel.settings import Settings
from services.modelzoo.catalog import Catalog, ensure_catalog
from services.modelzoo.clients import TrainingClient
from services.modelzoo.domain import ModelZoo
from services.modelzoo.servicer import ModelZooServicer
from services.modelzoo.settings import ModelZooSettings, modelzoo_settings
from services.modelzoo.sources import OfflineSources, SourceChain
from trainyard.modelzoo.v1 import modelzoo_service_pb2_grpc

SERVICE_NAME = "trainyard.modelzoo.v1.ModelZooService"

log = logging.getLogger(__name__)


def make_zoo(cfg: ModelZooSettings, engine, s3) -> ModelZoo:
    """The domain object: the catalog (built first when missing, in a subprocess) and the weight store."""
    path = ensure_catalog(cfg.catalog_path, rebuild_stale=not cfg.modelzoo_catalog)
    catalog = Catalog.load(path)
    log.info(
        "catalog loaded", extra={"path": str(path), "models": len(catalog.models), "families": len(catalog.families)}
    )
    offline = OfflineSources(cfg.modelzoo_offline_weights_dir or None, cfg.offline_packages)
    sources = SourceChain.from_settings(
        cfg.weight_sources,
        offline=offline,
        s3=s3,
        hf_endpoint=cfg.hf_endpoint,
        timeout_s=cfg.modelzoo_download_timeout_s,
        attempts=cfg.modelzoo_download_attempts,
    )
    log.info("weight sources", extra={"sources": sources.describe()})
    return ModelZoo(
        catalog,
        engine,
        s3,
        sources,
        work_dir=Path(cfg.home) / "modelzoo" / "tmp",
        max_concurrent_pulls=cfg.modelzoo_max_concurrent_pulls,
    )


async def start(settings: Settings) -> RunningService:
    cfg = modelzoo_settings(settings)
    engine = make_engine(cfg.database_url)
    await asyncio.to_thread(migrate, engine, Path(__file__).parent / "migrations", "alembic_version_modelzoo")
    s3 = objectstore.make_client(cfg)
    await asyncio.to_thread(objectstore.ensure_buckets, s3, (objectstore.WEIGHTS_BUCKET, objectstore.UPLOADS_BUCKET))
    zoo = await asyncio.to_thread(make_zoo, cfg, engine, s3)
    training = TrainingClient(cfg)
    servicer = ModelZooServicer(zoo, max_upload_bytes=cfg.modelzoo_max_upload_bytes, training=training)
    server, port = await serve(
        cfg, [(modelzoo_service_pb2_grpc.add_ModelZooServiceServicer_to_server, servicer, SERVICE_NAME)]
    )
    return RunningService(server, port, closers=[zoo.puller.shutdown, engine.dispose, training.close])
