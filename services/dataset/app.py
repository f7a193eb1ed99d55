"""In-process start of the dataset service (tests) and the body of `python -m services.dataset`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kernel import objectstore
from kernel.db import make_engine, migrate
from kernel.server import RunningService, serve
from kernel.settings import Settings
from services.dataset.domain import Datasets
from services.dataset.servicer import DatasetServicer
from services.dataset.settings import dataset_settings
from trainyard.dataset.v1 import dataset_service_pb2_grpc

SERVICE_NAME = "trainyard.dataset.v1.DatasetService"


async def start(settings: Settings) -> RunningService:
    cfg = dataset_settings(settings)
    engine = make_engine(cfg.database_url)
    await asyncio.to_thread(migrate, engine, Path(__file__).parent / "migrations", "alembic_version_dataset")
    s3 = objectstore.make_client(cfg)
    await asyncio.to_thread(objectstore.ensure_buckets, s3, (objectstore.DATASETS_BUCKET,))
    # imports write without the SDK's own retries: dataset_object_store_retry_s governs their waits
    datasets = Datasets(engine, s3, cfg, import_s3=objectstore.make_client(cfg, retries=1))
    servicer = DatasetServicer(datasets)
    server, port = await serve(
        cfg, [(dataset_service_pb2_grpc.add_DatasetServiceServicer_to_server, servicer, SERVICE_NAME)]
    )
    running = RunningService(server, port, closers=[datasets.close, engine.dispose])
    running.datasets = datasets  # type: ignore[attr-defined]
    return running
