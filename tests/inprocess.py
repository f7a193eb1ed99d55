"""The whole platform in-process on a background event loop, for synchronous SDK, CLI and tenancy tests.

    with InProcessPlatform(settings, catalog_path, trainer=True) as platform:
        platform.gateway_address, platform.admin_token

Every service, the gateway (bootstrap admin token of project "default") and optionally one trainer
run on their own asyncio loop in a thread, wired like the local stack (internal token on), so test
code can call them with blocking clients (the SDK, the CLI, sync gRPC stubs).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from pathlib import Path

from kernel.settings import Settings


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class InProcessPlatform:
    def __init__(self, settings: Settings, catalog_path: Path, *, trainer: bool = True, gateway: dict | None = None):
        self.base = settings.model_copy(
            update={"internal_token": secrets.token_hex(16), "modelzoo_catalog": str(catalog_path)}
        )
        self.trainer = trainer
        self.gateway_overrides = gateway or {}
        self.admin_token = f"ty_admin_{secrets.token_urlsafe(24)}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="inprocess-platform", daemon=True)
        self.running: list = []
        self.services: dict[str, str] = {}
        self.gateway_address = ""
        self.http_url = ""  # the gateway's HTTP port (Connect, gRPC-Web, JSON, console) when asked for
        self._worker = None
        self._trainer_task = None

    def run(self, coro, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        from gateway.app import start as start_gateway
        from services.dataset.app import start as start_dataset
        from services.inference.app import start as start_inference
        from services.modelzoo.app import start as start_modelzoo
        from services.recommend.app import start as start_recommend
        from services.training.app import start as start_training

        base = self.base
        dataset = await start_dataset(base)
        self.running.append(dataset)
        # the zoo asks the training service (started after it) whether a task uses a trained model
        training_listen = f"127.0.0.1:{_free_port()}"
        zoo = await start_modelzoo(base.model_copy(update={"training_address": training_listen}))
        self.running.append(zoo)
        wired = base.model_copy(update={"dataset_address": dataset.address, "modelzoo_address": zoo.address})
        recommend = await start_recommend(wired)
        self.running.append(recommend)
        wired = wired.model_copy(update={"recommend_address": recommend.address})
        training = await start_training(wired.model_copy(update={"listen": training_listen}))
        self.running.append(training)
        wired = wired.model_copy(update={"training_address": training.address})
        inference = await start_inference(wired)
        self.running.append(inference)
        wired = wired.model_copy(update={"inference_address": inference.address})
        self.services = {
            "inference": inference.address,
            "dataset": dataset.address,
            "modelzoo": zoo.address,
            "recommend": recommend.address,
            "training": training.address,
        }
        gateway = await start_gateway(
            wired.model_copy(
                update={"listen": "127.0.0.1:0", "bootstrap_token": self.admin_token, **self.gateway_overrides}
            )
        )
        self.running.append(gateway)
        self.gateway_address = gateway.address
        self.gateway = gateway.gateway
        if getattr(gateway, "http", None) is not None:
            self.http_url = gateway.http.url
        if self.trainer:
            from trainer.settings import TrainerSettings
            from trainer.worker import Worker

            trainer_settings = TrainerSettings.model_validate(
                {
                    **dict(base.__dict__),
                    "trainer_name": "inprocess-trainer",
                    "trainer_cache_dir": Path(base.home) / "trainer-cache",
                }
            )
            self._worker = Worker(settings=trainer_settings)
            await self._worker.connect()
            self._trainer_task = asyncio.create_task(self._worker.run())

    async def _stop(self) -> None:
        if self._worker is not None:
            await self._worker.shutdown()
            try:
                await asyncio.wait_for(self._trainer_task, 60)
            finally:
                await self._worker.close()
        for service in reversed(self.running):
            await service.stop()

    def __enter__(self) -> InProcessPlatform:
        self.thread.start()
        try:
            self.run(self._start(), timeout=300)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        try:
            self.run(self._stop(), timeout=120)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    def __exit__(self, *exc) -> None:
        self.close()
