"""What the zoo asks other services: the training service, whether tasks start from a trained model."""

from __future__ import annotations

import grpc

from kernel import errors
from kernel.channels import call_metadata, call_timeout, internal_channel
from kernel.settings import Settings
from trainyard.training.v1 import training_service_pb2, training_service_pb2_grpc

CALL_TIMEOUT_S = 10.0


class TrainingClient:
    """TrainingService, reached lazily at TRAINYARD_TRAINING_ADDRESS, as the current caller."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._channel: grpc.aio.Channel | None = None

    async def active_users(self, model_id: str) -> list[str]:
        """Ids of the caller's tasks that have not ended and start from `model_id` (trials included)."""
        if not self.settings.training_address:
            raise errors.Unavailable(
                "cannot tell whether a training task uses the model: the training service address is not "
                "configured (TRAINYARD_TRAINING_ADDRESS)"
            )
        if self._channel is None:
            self._channel = internal_channel(self.settings.training_address, self.settings)
        stub = training_service_pb2_grpc.TrainingServiceStub(self._channel)
        request = training_service_pb2.ListTrainingTasksRequest(model_id=model_id, active_only=True, page_size=20)
        try:
            response = await stub.ListTrainingTasks(
                request, metadata=call_metadata(self.settings), timeout=call_timeout(CALL_TIMEOUT_S)
            )
        except grpc.RpcError as exc:
            raise errors.from_rpc_error(exc, "training service") from None
        return [t.id for t in response.tasks]

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
