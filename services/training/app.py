"""In-process start of the training service (used by `python -m services.training` and tests)."""

from __future__ import annotations

from pathlib import Path

from kernel import db, messaging, objectstore
from kernel.server import RunningService, serve
from kernel.settings import Settings
from services.training.clients import GrpcDatasetClient, GrpcModelZooClient, GrpcRecommender, LazyRemote
from services.training.consumer import EventConsumer, MaxDeliveriesConsumer
from services.training.domain import ArtifactStore, JetStreamPublisher, TrainingDomain
from services.training.reconcile import Reconciler
from services.training.servicer import TrainingServicer
from services.training.store import TaskStore
from trainyard.training.v1 import training_service_pb2_grpc


async def start(settings: Settings, *, datasets=None, zoo=None, recommender=None) -> RunningService:
    """Start the service; the dataset, zoo and recommend clients default to gRPC ones from settings."""
    engine = db.make_engine(settings.database_url)
    db.migrate(engine, Path(__file__).parent / "migrations", "alembic_version_training")
    s3 = objectstore.make_client(settings)
    objectstore.ensure_buckets(s3)
    nc = await messaging.connect(settings.nats_url, "training")
    js = nc.jetstream()
    await messaging.ensure_streams(js)
    remote = []
    if datasets is None:
        datasets = LazyRemote(lambda: GrpcDatasetClient(settings))
        remote.append(datasets)
    if zoo is None:
        zoo = LazyRemote(lambda: GrpcModelZooClient(settings))
        remote.append(zoo)
    if recommender is None:
        recommender = LazyRemote(lambda: GrpcRecommender(settings))
        remote.append(recommender)
    domain = TrainingDomain(
        store=TaskStore(engine),
        datasets=datasets,
        zoo=zoo,
        recommender=recommender,
        publisher=JetStreamPublisher(js),
        artifacts=ArtifactStore(s3, objectstore.public_client(settings)),
        bus_connected=lambda: nc.is_connected,
        watch_bus_grace_s=settings.training_watch_bus_grace_s,
        max_active_tasks=settings.training_max_active_tasks_per_project,
        storage_quota_bytes=settings.training_storage_quota_bytes_per_project,
    )
    consumer = EventConsumer(js, domain)
    await consumer.start()
    await domain.tuner.start()
    # No task waits forever on a trainer that vanished or a job that was never queued (reconcile.py).
    reconciler = Reconciler(
        js,
        domain,
        lease_s=settings.training_lease_s,
        interval_s=settings.training_sweep_interval_s,
        pending_grace_s=settings.training_pending_grace_s,
    )
    reconciler.start()
    # ... nor on a job JetStream gave up with no word from its last trainer (the sweep cannot see that).
    given_up = MaxDeliveriesConsumer(js, reconciler)
    await given_up.start()
    server, port = await serve(
        settings,
        [
            (
                training_service_pb2_grpc.add_TrainingServiceServicer_to_server,
                TrainingServicer(domain),
                "trainyard.training.v1.TrainingService",
            )
        ],
    )
    running = RunningService(
        server,
        port,
        closers=[
            engine.dispose,
            nc.close,
            *[r.close for r in remote],
            consumer.stop,
            domain.tuner.stop,
            reconciler.stop,
            given_up.stop,
        ],
    )
    running.domain = domain  # type: ignore[attr-defined]
    running.reconciler = reconciler  # type: ignore[attr-defined]
    return running
