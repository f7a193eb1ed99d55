"""The training service's reconcile sweep (services/training/reconcile.py): no task stays RUNNING forever
behind a vanished trainer, and none stays PENDING after a crash between storing it and queueing its job.

The first test drives one sweep over every case against its own nats-server (the session one is shared
with trainers of other tests); the second kills a real trainer process while the training service is down
and restarts the service with a short lease.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
import nats.js.errors
import pytest
from nats.js.api import AckPolicy, ConsumerConfig
from testjobs import resolved

from deploy.local.embedded import start_nats
from kernel import db, messaging
from services.training.domain import JetStreamPublisher, TrainingDomain
from services.training.reconcile import Reconciler
from services.training.store import NewTask, TaskStore
from trainyard.common.v1 import common_pb2 as C
from trainyard.events.v1 import events_pb2
from trainyard.training.v1 import training_pb2 as T

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parent.parent.parent
MIGRATIONS = REPO / "services" / "training" / "migrations"


def new_task(name: str) -> NewTask:
    return NewTask(
        project="default",
        request_id=f"req-{name}",
        name=name,
        description="",
        task_type=C.TASK_TYPE_CLASSIFICATION,
        dataset_id="ds1",
        dataset_version_id="dv1",
        model_id="tv/mobilenet_v2.imagenet1k_v1",
        mode=0,
        auto_select=None,
        transfer_strategy=C.TRANSFER_STRATEGY_FINE_TUNE_ALL,
        hyperparameters=C.Hyperparameters(epochs=1),
        selection_rationale="",
        job=events_pb2.TrainingJob(project="default", task_type=C.TASK_TYPE_CLASSIFICATION),
    )


def trainer_event(task_id: str, attempt: int, **kind) -> events_pb2.TrainerEvent:
    ev = events_pb2.TrainerEvent(task_id=task_id, attempt=attempt, trainer_node=f"node-{task_id[-4:]}", **kind)
    ev.time.GetCurrentTime()
    return ev


async def test_one_sweep_requeues_fails_and_republishes_by_queue_state(tmp_path):
    nats = start_nats(tmp_path / "nats")
    engine = db.make_engine(f"sqlite:///{tmp_path}/training.db")
    db.migrate(engine, MIGRATIONS, "alembic_version_training")
    nc = await messaging.connect(nats.url, "reconcile-test")
    try:
        js = nc.jetstream()
        await messaging.ensure_streams(js)
        await js.add_consumer(
            messaging.JOBS_STREAM,
            ConsumerConfig(
                durable_name=messaging.trainers_durable("classification"),
                ack_policy=AckPolicy.EXPLICIT,
                max_deliver=2,
                filter_subject=messaging.jobs_subject("classification"),
            ),
        )
        store = TaskStore(engine)
        domain = TrainingDomain(
            store=store, datasets=None, zoo=None, recommender=None, publisher=JetStreamPublisher(js)
        )
        ids = {}
        for name in ("pending", "alive", "requeue", "last", "gone", "final", "search", "early", "waiting"):
            new = new_task(name)
            if name == "search":  # a hyperparameter search: RUNNING while its trials run, no job of its own
                new.search = T.HyperparameterSearch(max_trials=2)
            ids[name] = store.insert_pending(new)[0].id
        for name in ("alive", "requeue", "last", "gone", "final", "search", "early", "waiting"):
            store.mark_queued(ids[name])
        attempts = {"alive": 1, "requeue": 1, "last": 2, "gone": 1, "final": 1, "search": 1}
        for name, attempt in attempts.items():
            started = trainer_event(ids[name], attempt, started=events_pb2.JobStarted())
            store.apply_trainer_event(started)
            await js.publish(messaging.events_subject(ids[name]), started.SerializeToString())
        # QUEUED tasks whose delivery began (heartbeats) but never reported `started`: the last of 2, and the 1st
        for name, attempt in (("early", 2), ("waiting", 1)):
            beat = trainer_event(ids[name], attempt, heartbeat=events_pb2.JobHeartbeat())
            await js.publish(messaging.events_subject(ids[name]), beat.SerializeToString())
        for name in ("requeue", "last", "early", "waiting"):  # their jobs are still in the queue (never acked)
            job = events_pb2.TrainingJob.FromString(store.job(ids[name]))
            await js.publish(messaging.jobs_subject("classification"), job.SerializeToString())
        done = trainer_event(ids["final"], 1, succeeded=events_pb2.JobSucceeded())
        await js.publish(messaging.events_subject(ids["final"]), done.SerializeToString())  # not applied yet

        lease = 1.0
        reconciler = Reconciler(js, domain, lease_s=lease, interval_s=60, pending_grace_s=0)

        async def all_silent_for_a_lease() -> bool:  # what the sweep judges by: the stream's last event times
            for name in ("requeue", "last", "gone", "early", "waiting"):
                last = await reconciler._last_event(ids[name])
                if last is not None and (datetime.now(UTC) - last[0]).total_seconds() < lease:
                    return False
            return True

        async with asyncio.timeout(30):
            while not await all_silent_for_a_lease():
                await asyncio.sleep(0.05)
        beat = trainer_event(ids["alive"], 1, heartbeat=events_pb2.JobHeartbeat(epoch=1))
        await js.publish(messaging.events_subject(ids["alive"]), beat.SerializeToString())

        result = await reconciler.sweep()
        assert result.republished == [ids["pending"]]
        assert result.requeued == [ids["requeue"]]
        assert sorted(result.failed) == sorted([ids["last"], ids["gone"], ids["early"]])

        def state(name: str) -> T.TrainingTask:
            return store.get("default", ids[name])

        assert state("pending").state == T.TASK_STATE_QUEUED
        assert ids["pending"] in await reconciler._queued_jobs({"classification"})
        assert state("alive").state == T.TASK_STATE_RUNNING  # its heartbeat is fresh
        assert state("final").state == T.TASK_STATE_RUNNING  # left to the event consumer
        assert state("search").state == T.TASK_STATE_RUNNING  # the tuner's business
        early = state("early")
        assert early.state == T.TASK_STATE_FAILED and "node-" in early.failure_reason
        assert "last of 2 deliveries" in early.failure_reason
        assert state("waiting").state == T.TASK_STATE_QUEUED  # JetStream redelivers it
        requeued = state("requeue")
        assert requeued.state == T.TASK_STATE_QUEUED
        assert "node-" in requeued.failure_reason and "requeued" in requeued.failure_reason
        last = state("last")
        assert last.state == T.TASK_STATE_FAILED and "last of 2 deliveries" in last.failure_reason
        assert ids["last"] not in await reconciler._queued_jobs({"classification"})  # its message is deleted
        gone = state("gone")
        assert gone.state == T.TASK_STATE_FAILED and "no longer queued" in gone.failure_reason
        logs = [e.log for e in store.events_after("default", ids["gone"]) if e.WhichOneof("event") == "log"]
        assert logs == [gone.failure_reason]

        # A second sweep changes nothing more; a later trainer event of a newer attempt still applies.
        again = await reconciler.sweep()
        assert not (again.republished or again.requeued or again.failed)
        store.apply_trainer_event(trainer_event(ids["requeue"], 2, started=events_pb2.JobStarted()))
        assert state("requeue").state == T.TASK_STATE_RUNNING and state("requeue").attempt == 2
    finally:
        await nc.close()
        nats.stop(grace=2)
        engine.dispose()


# -- a trainer lost on the last delivery before it reported anything ------------------------------------


def runnable_task(name: str) -> NewTask:
    """A task whose job passes the trainer's checks, so the trainer gets as far as reading S3."""
    new = new_task(name)
    new.job.hyperparameters.CopyFrom(
        C.Hyperparameters(epochs=1, batch_size=2, image_size=32, learning_rate=0.01, optimizer=C.OPTIMIZER_SGD)
    )
    new.job.dataset.class_names.extend(["cat", "dog"])
    new.job.output_bucket = "trainyard-artifacts"
    resolved(new.job)  # completed as the service completes a job, so the trainer takes it
    return new


@pytest.mark.slow
async def test_a_trainer_lost_on_the_last_delivery_before_any_event_fails_the_task(settings, tmp_path):
    """JetStream gives the job up (max_deliver 1) and nothing ever reached the events stream: only the
    max-deliveries advisory tells. Two service replicas share it; replaying it changes nothing more."""
    from test_trainer_kill import trainer_env

    from deploy.local.embedded import free_ports
    from services.training.app import start as start_training

    server = start_nats(tmp_path / "nats")  # its own: the trainers' consumer here gives a job one delivery
    service_settings = settings.model_copy(update={"nats_url": server.url})
    replicas = [await start_training(service_settings), await start_training(service_settings)]
    nc = await messaging.connect(server.url, "given-up-test")
    proc = None
    try:
        js = nc.jetstream()
        domain = replicas[0].domain
        store = domain.store
        task = await domain.enqueue_if_pending(store.insert_pending(runnable_task("lost"))[0])
        assert task.state == T.TASK_STATE_QUEUED
        seq = (await js.stream_info(messaging.JOBS_STREAM)).state.last_seq

        # The trainer holds the job without a word: its object store is a closed port (retried for 10 min,
        # so no `started`), its first heartbeat would come after 10 min. It is killed once it has the job.
        env = trainer_env(settings, tmp_path) | {
            "TRAINYARD_NATS_URL": server.url,
            "TRAINYARD_S3_ENDPOINT": f"127.0.0.1:{free_ports(1)[0]}",
            "TRAINYARD_TRAINER_NAME": "lost-trainer",
            "TRAINYARD_TRAINER_MAX_DELIVER": "1",
            "TRAINYARD_TRAINER_ACK_WAIT": "2",
            "TRAINYARD_TRAINER_HEARTBEAT_S": "600",
            "TRAINYARD_TRAINER_OBJECT_STORE_RETRY_S": "600",
        }
        out = (tmp_path / "lost-trainer.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "trainer"], env=env, cwd=REPO, stdout=out, stderr=out)
        durable = messaging.trainers_durable("classification")
        async with asyncio.timeout(120):
            while True:
                assert proc.poll() is None, (tmp_path / "lost-trainer.log").read_text()[-3000:]
                try:
                    if (await js.consumer_info(messaging.JOBS_STREAM, durable)).delivered.stream_seq >= seq:
                        break
                except nats.js.errors.NotFoundError:
                    pass  # the trainer has not made its consumer yet
                await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait(30)

        deadline = time.monotonic() + 30  # the ack wait (2 s), then the advisory; before the fix: QUEUED forever
        while (got := store.get("default", task.id)).state == T.TASK_STATE_QUEUED:
            assert time.monotonic() < deadline, f"still QUEUED 30 s after the trainer was killed: {got}"
            await asyncio.sleep(0.1)
        assert got.state == T.TASK_STATE_FAILED, got
        print(f"FIGURE given up: FAILED {time.monotonic() - killed_at:.1f} s after the kill: {got.failure_reason}")
        assert "delivered 1 time " in got.failure_reason and "no trainer finished it" in got.failure_reason
        reconciler = replicas[1].reconciler
        assert await reconciler._last_event(task.id) is None  # the trainer never reported: the sweep saw nothing
        with pytest.raises(nats.js.errors.NotFoundError):
            await js.get_msg(messaging.JOBS_STREAM, seq=seq)  # the dead job message is gone from the queue
        history = store.events_after("default", task.id)
        for replica in replicas:  # the advisory again, on each replica: nothing more happens
            assert await replica.reconciler.job_given_up(seq, durable, 1) == "gone"
        assert store.get("default", task.id) == got and store.events_after("default", task.id) == history

        # The same advisory handled by both replicas at once moves the task once. A delivery that did
        # report is left to the lease sweep; an ended task only loses its dead job message.
        tasks, seqs = {}, {}
        for name in ("twice", "reported", "ended"):
            tasks[name] = await domain.enqueue_if_pending(store.insert_pending(runnable_task(name))[0])
            seqs[name] = (await js.stream_info(messaging.JOBS_STREAM)).state.last_seq
        beat = trainer_event(tasks["reported"].id, 1, heartbeat=events_pb2.JobHeartbeat())
        await js.publish(messaging.events_subject(tasks["reported"].id), beat.SerializeToString())
        store.cancel("default", tasks["ended"].id)
        outcomes = await asyncio.gather(
            *(r.reconciler.job_given_up(seqs["twice"], durable, 1) for r in (*replicas, *replicas))
        )
        assert outcomes.count("failed") == 1 and set(outcomes) <= {"failed", "ended", "gone"}, outcomes
        twice = store.get("default", tasks["twice"].id)
        assert twice.state == T.TASK_STATE_FAILED
        logs = [e.log for e in store.events_after("default", twice.id) if e.WhichOneof("event") == "log"]
        assert logs == [twice.failure_reason]
        assert await reconciler.job_given_up(seqs["reported"], durable, 1) == "left"
        assert store.get("default", tasks["reported"].id).state == T.TASK_STATE_QUEUED
        assert (await js.get_msg(messaging.JOBS_STREAM, seq=seqs["reported"])).seq == seqs["reported"]
        assert await reconciler.job_given_up(seqs["ended"], durable, 1) == "ended"
        assert store.get("default", tasks["ended"].id).state == T.TASK_STATE_CANCELLED
        for name in ("twice", "ended"):
            with pytest.raises(nats.js.errors.NotFoundError):
                await js.get_msg(messaging.JOBS_STREAM, seq=seqs[name])
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(30)
        await nc.close()
        for replica in replicas:
            await replica.stop()
        server.stop(grace=2)


# -- a real trainer killed while the training service is down -----------------------------------------


@pytest.mark.slow
async def test_service_restart_requeues_then_fails_a_task_whose_trainers_were_killed(settings, tmp_path, catalog_path):
    from test_trainer_kill import drop_consumer, trainer_env
    from test_training_service import MOBILENET, make_dataset, request

    from services.dataset.app import start as start_dataset
    from services.modelzoo.app import start as start_modelzoo
    from services.training.app import start as start_training
    from trainyard.dataset.v1 import dataset_service_pb2_grpc
    from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mpb
    from trainyard.modelzoo.v1 import modelzoo_service_pb2_grpc
    from trainyard.training.v1 import training_service_pb2 as pb
    from trainyard.training.v1 import training_service_pb2_grpc

    offline = tmp_path / "offline-weights"
    offline.mkdir()
    dataset = await start_dataset(settings)
    zoo = await start_modelzoo(
        settings.model_copy(
            update={
                "modelzoo_catalog": str(catalog_path),
                "modelzoo_offline_weights_dir": str(offline),
            }
        )
    )
    training_settings = settings.model_copy(
        update={"dataset_address": dataset.address, "modelzoo_address": zoo.address}
    )
    training = await start_training(training_settings)
    channels = [grpc.aio.insecure_channel(s.address) for s in (dataset, zoo)]
    procs: list[subprocess.Popen] = []
    await drop_consumer(settings)

    def spawn(name: str) -> subprocess.Popen:
        env = trainer_env(settings, tmp_path) | {
            "TRAINYARD_TRAINER_NAME": name,
            "TRAINYARD_TRAINER_MAX_DELIVER": "2",
            "TRAINYARD_HOME": str(tmp_path / name),
        }
        out = (tmp_path / f"{name}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "trainer"], env=env, cwd=REPO, stdout=out, stderr=out)
        procs.append(proc)
        return proc

    async def wait_for(stub, task_id: str, check, timeout: float) -> T.TrainingTask:
        async with asyncio.timeout(timeout):
            while True:
                for proc in procs:
                    if proc.poll() not in (None, -signal.SIGKILL):
                        raise AssertionError(f"a trainer exited: {proc.returncode}")
                got = (await stub.GetTrainingTask(pb.GetTrainingTaskRequest(task_id=task_id))).task
                if check(got):
                    return got
                await asyncio.sleep(0.2)

    try:
        datasets = dataset_service_pb2_grpc.DatasetServiceStub(channels[0])
        zoo_stub = modelzoo_service_pb2_grpc.ModelZooServiceStub(channels[1])
        dataset_id = await make_dataset(datasets, "reconcile")
        await zoo_stub.ImportWeights(mpb.ImportWeightsRequest(model_id=MOBILENET))
        hp = C.Hyperparameters(epochs=200, batch_size=4, image_size=32)
        channel = grpc.aio.insecure_channel(training.address)
        stub = training_service_pb2_grpc.TrainingServiceStub(channel)
        task = (await stub.CreateTrainingTask(request(dataset_id, hyperparameters=hp))).task

        first = spawn("first-trainer")
        await wait_for(stub, task.id, lambda t: t.state == T.TASK_STATE_RUNNING and t.progress.step > 0, 180)
        await channel.close()
        await training.stop()  # the service goes down while the task runs ...
        first.send_signal(signal.SIGKILL)  # ... and its trainer vanishes meanwhile
        first.wait(30)

        lease = 3.0
        restarted_at = time.monotonic()
        training = await start_training(
            training_settings.model_copy(update={"training_lease_s": lease, "training_sweep_interval_s": 0.5})
        )
        channel = grpc.aio.insecure_channel(training.address)
        stub = training_service_pb2_grpc.TrainingServiceStub(channel)
        requeued = await wait_for(stub, task.id, lambda t: t.state != T.TASK_STATE_RUNNING, 60)
        requeued_after = time.monotonic() - restarted_at
        assert requeued.state == T.TASK_STATE_QUEUED, requeued
        assert "first-trainer sent nothing" in requeued.failure_reason and "requeued" in requeued.failure_reason

        # The redelivered job (attempt 2 of 2) runs on another trainer; the lease holds while it lives.
        second = spawn("second-trainer")
        running = await wait_for(
            stub, task.id, lambda t: t.state == T.TASK_STATE_RUNNING and t.trainer_node == "second-trainer", 180
        )
        assert running.attempt == 2
        # the lease holds while heartbeats arrive: sweeps that ran a whole lease after the task started
        # running (each one would have requeued it without them) leave it RUNNING
        reconciler = training.reconciler
        judged_after = time.monotonic() + lease
        sweeps = []
        async with asyncio.timeout(60):
            while len(sweeps) < 3:
                await asyncio.sleep(0.1)
                if time.monotonic() > judged_after and reconciler.sweeps not in sweeps:
                    sweeps.append(reconciler.sweeps)
                    got = (await stub.GetTrainingTask(pb.GetTrainingTaskRequest(task_id=task.id))).task
                    assert got.state == T.TASK_STATE_RUNNING and got.attempt == 2, got
        second.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        failed = await wait_for(stub, task.id, lambda t: t.state != T.TASK_STATE_RUNNING, 60)
        failed_after = time.monotonic() - killed_at
        assert failed.state == T.TASK_STATE_FAILED, failed
        assert "second-trainer sent nothing" in failed.failure_reason
        assert "last of 2 deliveries" in failed.failure_reason
        print(
            f"FIGURE reconcile: lease {lease} s; requeued {requeued_after:.1f} s after the restart; "
            f"failed {failed_after:.1f} s after the last trainer was killed: {failed.failure_reason}"
        )
        await channel.close()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
        for ch in channels:
            await ch.close()
        for running_service in (training, zoo, dataset):
            await running_service.stop()
        await drop_consumer(settings, purge=True)
