"""Thin gRPC servicer: request -> TrainingDomain -> response."""

from __future__ import annotations

from kernel.errors import require
from services.training.domain import TrainingDomain
from trainyard.training.v1 import training_service_pb2 as pb
from trainyard.training.v1 import training_service_pb2_grpc


class TrainingServicer(training_service_pb2_grpc.TrainingServiceServicer):
    def __init__(self, domain: TrainingDomain) -> None:
        self.domain = domain

    async def CreateTrainingTask(self, request, context):
        return pb.CreateTrainingTaskResponse(task=await self.domain.create(request))

    async def GetTrainingTask(self, request, context):
        require(task_id=request.task_id)
        return pb.GetTrainingTaskResponse(task=await self.domain.get(request.task_id))

    async def ListTrainingTasks(self, request, context):
        tasks, token = await self.domain.list(
            request.state, request.page_size, request.page_token, request.model_id, request.active_only
        )
        return pb.ListTrainingTasksResponse(tasks=tasks, next_page_token=token)

    async def WatchTrainingTask(self, request, context):
        require(task_id=request.task_id)
        async for event in self.domain.watch(request.task_id, request.from_start, request.after_sequence):
            if context.done():
                return
            yield pb.WatchTrainingTaskResponse(event=event)

    async def DeleteTrainingTask(self, request, context):
        require(task_id=request.task_id)
        return await self.domain.delete(request.task_id)

    async def CancelTrainingTask(self, request, context):
        require(task_id=request.task_id)
        return pb.CancelTrainingTaskResponse(task=await self.domain.cancel(request.task_id))

    async def ContinueTrainingTask(self, request, context):
        return pb.ContinueTrainingTaskResponse(
            task=await self.domain.continue_task(request.task_id, request.additional_epochs)
        )

    async def GetTaskArtifacts(self, request, context):
        require(task_id=request.task_id)
        return pb.GetTaskArtifactsResponse(
            links=await self.domain.artifact_links(request.task_id, request.expires_in_seconds)
        )

    async def ListTrials(self, request, context):
        require(task_id=request.task_id)
        return await self.domain.list_trials(request.task_id, request.page_size, request.page_token)

    async def GetHyperparameterSchema(self, request, context):
        return await self.domain.hyperparameter_schema(request.model_id, request.task_type)

    async def ReadTaskArtifact(self, request, context):
        require(task_id=request.task_id)
        async for chunk, size, sha256 in self.domain.read_artifact(request.task_id, request.name):
            yield pb.ReadTaskArtifactResponse(chunk=chunk, size_bytes=size, sha256=sha256)

    async def CreateEvaluation(self, request, context):
        return pb.CreateEvaluationResponse(evaluation=await self.domain.evaluations.create(request))

    async def GetEvaluation(self, request, context):
        require(evaluation_id=request.evaluation_id)
        return pb.GetEvaluationResponse(evaluation=await self.domain.evaluations.get(request.evaluation_id))

    async def ListEvaluations(self, request, context):
        items, token = await self.domain.evaluations.list(request.model_id, request.page_size, request.page_token)
        return pb.ListEvaluationsResponse(evaluations=items, next_page_token=token)

    async def WatchEvaluation(self, request, context):
        require(evaluation_id=request.evaluation_id)
        async for response in self.domain.evaluations.watch(request.evaluation_id):
            if context.done():
                return
            yield response

    async def CancelEvaluation(self, request, context):
        require(evaluation_id=request.evaluation_id)
        return pb.CancelEvaluationResponse(evaluation=await self.domain.evaluations.cancel(request.evaluation_id))

    async def ListEvaluationCases(self, request, context):
        require(evaluation_id=request.evaluation_id)
        return await self.domain.evaluations.cases(request)

    async def ListLabelErrors(self, request, context):
        require(evaluation_id=request.evaluation_id)
        return await self.domain.evaluations.label_errors(request)
