"""Thin grpc.aio servicer: proto -> ModelZoo call (in a thread: SQL and S3 block) -> proto."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from kernel import identity
from kernel.errors import FailedPrecondition, InvalidArgument, require
from kernel.recipes import default_hyperparameters
from services.modelzoo import domain, pulls
from services.modelzoo.domain import (
    FamilyView,
    ModelQuery,
    ModelView,
    ModelZoo,
    PresetView,
    Selected,
    TrainedModelInput,
    WeightsSelection,
)
from trainyard.common.v1 import common_pb2
from trainyard.modelzoo.v1 import modelzoo_pb2, modelzoo_service_pb2, modelzoo_service_pb2_grpc

WEIGHT_STATUS = {
    domain.IN_STORE: modelzoo_pb2.WEIGHT_STATUS_IN_STORE,
    domain.IMPORTABLE: modelzoo_pb2.WEIGHT_STATUS_IMPORTABLE,
    domain.UNAVAILABLE: modelzoo_pb2.WEIGHT_STATUS_UNAVAILABLE,
}
# The domain's scope names; an unset scope on an upload means the caller's project.
SCOPES = {
    modelzoo_pb2.WEIGHTS_SCOPE_UNSPECIFIED: domain.SCOPE_PROJECT,
    modelzoo_pb2.WEIGHTS_SCOPE_PROJECT: domain.SCOPE_PROJECT,
    modelzoo_pb2.WEIGHTS_SCOPE_PUBLIC: domain.SCOPE_PUBLIC,
}
PULL_STATES = {
    pulls.QUEUED: modelzoo_pb2.PULL_STATE_QUEUED,
    pulls.DOWNLOADING: modelzoo_pb2.PULL_STATE_DOWNLOADING,
    pulls.CHECKING: modelzoo_pb2.PULL_STATE_CHECKING,
    pulls.STORED: modelzoo_pb2.PULL_STATE_STORED,
    pulls.ALREADY_IN_STORE: modelzoo_pb2.PULL_STATE_ALREADY_IN_STORE,
    pulls.FAILED: modelzoo_pb2.PULL_STATE_FAILED,
}
PULL_POLL_S = 0.25  # how often a PullWeights stream looks at its pulls (they announce bytes every 0.5 s)
EXPORT_CHUNK = 1024 * 1024
MAX_ORIGIN = 512
TRAINING_MODES = {
    "general": modelzoo_pb2.TRAINING_MODE_GENERAL,
    "specialized": modelzoo_pb2.TRAINING_MODE_SPECIALIZED,
    "retraining": modelzoo_pb2.TRAINING_MODE_RETRAINING,
}


def model_to_proto(view: ModelView) -> modelzoo_pb2.Model:
    m = view.model
    out = modelzoo_pb2.Model(
        id=m.id,
        family=m.family,
        variant=m.variant,
        task_types=[domain.TASK_TYPE_NUMBERS[t] for t in m.task_types],
        architecture=m.architecture,
        library=m.library,
        pretrain_dataset=m.pretrain_dataset,
        pretrain_tag=m.pretrain_tag,
        license=m.license,
        num_params=m.num_params,
        gflops=m.gflops,
        default_input_size=m.default_input_size,
        mean=list(m.mean),
        std=list(m.std),
        reference_metrics=[
            common_pb2.Metric(name=x.name, value=x.value, dataset=x.dataset, source=x.source)
            for x in m.reference_metrics
        ],
        weight_status=WEIGHT_STATUS[view.weight_status],
        training_modes=[TRAINING_MODES[t] for t in m.training_modes],
        pretrained_num_classes=m.pretrained_num_classes,
        source_url=m.source_url,
    )
    out.resize_size = m.resize_size
    out.default_hyperparameters.CopyFrom(
        default_hyperparameters(m.family, m.task_types, m.num_params, m.default_input_size)
    )
    out.library_version = m.library_version
    out.origin = view.origin
    if view.weights is not None:
        out.weights.CopyFrom(_ref(view.weights))
    in_store = view.weights or view.backbone_weights
    if in_store is not None and view.lineage is None:
        out.weights_scope = (
            modelzoo_pb2.WEIGHTS_SCOPE_PUBLIC
            if in_store.project == domain.PUBLIC
            else modelzoo_pb2.WEIGHTS_SCOPE_PROJECT
        )
    if m.backbone:
        out.backbone = m.backbone
    if m.backbone_model_id:
        out.backbone_model_id = m.backbone_model_id
        out.backbone_weight_status = WEIGHT_STATUS[view.backbone_status or domain.UNAVAILABLE]
        if view.backbone_weights is not None:
            out.backbone_weights.CopyFrom(_ref(view.backbone_weights))
    if view.lineage is not None:
        lin = view.lineage
        out.name = lin.name
        out.base_model_id = lin.base_model_id
        out.dataset_id = lin.dataset_id
        out.dataset_version_id = lin.dataset_version_id
        out.task_id = lin.task_id
        out.class_names.extend(lin.class_names)
        out.metrics.update(lin.metrics)
        out.create_time.FromDatetime(lin.created_at)
    return out


def _ref(w: domain.StoredWeights) -> common_pb2.ObjectRef:
    return common_pb2.ObjectRef(bucket=w.bucket, key=w.key, sha256=w.sha256, size_bytes=w.size_bytes)


def preset_to_proto(view: PresetView) -> modelzoo_pb2.Preset:
    p = view.preset
    hp = common_pb2.Hyperparameters(image_size=p.input_size, augmentation=p.augmentation)
    for name, value in p.hyperparameters.items():
        setattr(hp, name, value)  # enum fields accept their value names
    return modelzoo_pb2.Preset(
        id=p.id,
        name=p.name,
        description=p.description,
        task_type=domain.TASK_TYPE_NUMBERS[p.task_type],
        model_id=p.model_id,
        hyperparameters=hp,
        transfer_strategy=common_pb2.TransferStrategy.Value(p.transfer_strategy),
        augmentation=p.augmentation,
        data_type=common_pb2.DataType.Value(p.data_type),
        input_size=p.input_size,
        example_classes=list(p.example_classes),
        weight_status=WEIGHT_STATUS[view.weight_status],
        weights_model_id=view.weights_model_id,
    )


def selection_from_proto(sel: modelzoo_pb2.WeightsSelection) -> WeightsSelection:
    return WeightsSelection(
        model_ids=tuple(sel.model_ids), family=sel.family, task_type=sel.task_type, preset_ids=tuple(sel.preset_ids)
    )


def pull_to_proto(selected: Selected, state: pulls.PullState) -> modelzoo_pb2.WeightsPull:
    out = modelzoo_pb2.WeightsPull(
        model_id=state.model_id,
        for_model_ids=list(selected.for_model_ids),
        state=PULL_STATES[state.state],
        url=state.url,
        bytes_done=state.bytes_done,
        bytes_total=state.bytes_total,
    )
    if state.weights is not None:
        out.weights.CopyFrom(_ref(state.weights))
        if not out.url:
            out.url = state.weights.source
    if state.error is not None:
        out.error_code = state.error.code.name
        out.error_reason = state.error.reason
        out.error_message = state.error.message
    return out


def family_to_proto(view: FamilyView) -> modelzoo_pb2.ModelFamily:
    return modelzoo_pb2.ModelFamily(
        name=view.family.name,
        description=view.family.description,
        task_types=[domain.TASK_TYPE_NUMBERS[t] for t in view.task_types],
        variant_count=view.variant_count,
        weights_in_store_count=view.weights_in_store_count,
    )


def _project() -> str:
    return identity.current().project


def _scope(value: int, field: str) -> str:
    if value not in SCOPES:
        raise InvalidArgument({field: f"unknown weights scope value {value}"})
    return SCOPES[value]


class ModelZooServicer(modelzoo_service_pb2_grpc.ModelZooServiceServicer):
    def __init__(self, zoo_: ModelZoo, max_upload_bytes: int = 4 * 1024**3, training=None) -> None:
        self.zoo = zoo_
        self.max_upload_bytes = max_upload_bytes
        self.training = training  # clients.TrainingClient: which tasks start from a trained model

    async def ListModelFamilies(self, request, context):
        families, token = await asyncio.to_thread(
            self.zoo.list_families, request.task_type, request.page_size, request.page_token, _project()
        )
        return modelzoo_service_pb2.ListModelFamiliesResponse(
            families=[family_to_proto(f) for f in families], next_page_token=token
        )

    async def ListModels(self, request, context):
        query = ModelQuery(
            task_type=request.task_type,
            family=request.family,
            pretrain_dataset=request.pretrain_dataset,
            max_params=request.max_params,
            max_gflops=request.max_gflops,
            weights_in_store=request.weights_in_store,
            query=request.query,
            origin=request.origin,
        )
        models, token, total = await asyncio.to_thread(
            self.zoo.list_models, query, request.page_size, request.page_token, _project()
        )
        return modelzoo_service_pb2.ListModelsResponse(
            models=[model_to_proto(m) for m in models], next_page_token=token, total_size=total
        )

    async def GetModel(self, request, context):
        require(model_id=request.model_id)
        view = await asyncio.to_thread(self.zoo.get_model, request.model_id, _project())
        return modelzoo_service_pb2.GetModelResponse(model=model_to_proto(view))

    async def PullWeights(self, request, context):
        handles = await asyncio.to_thread(self.zoo.pull, selection_from_proto(request.selection))
        seen: dict[str, int] = {}
        pending = list(handles)
        while pending:
            for handle in list(pending):
                state = handle.pull.snapshot()
                if seen.get(state.model_id) != state.version:
                    seen[state.model_id] = state.version
                    yield modelzoo_service_pb2.PullWeightsResponse(pull=pull_to_proto(handle.selected, state))
                if state.final:
                    pending.remove(handle)
            if pending:
                await asyncio.sleep(PULL_POLL_S)

    async def ExportWeights(self, request, context):
        project = _project()
        items = await asyncio.to_thread(self.zoo.export, selection_from_proto(request.selection), project)
        for item in items:
            w = item.weights
            yield modelzoo_service_pb2.ExportWeightsResponse(
                file=modelzoo_pb2.ExportedWeights(
                    model_id=item.selected.target.id,
                    for_model_ids=list(item.selected.for_model_ids),
                    library=item.selected.target.library,
                    architecture=item.selected.target.architecture,
                    weights=_ref(w),
                    source=w.source,
                    scope=modelzoo_pb2.WEIGHTS_SCOPE_PUBLIC
                    if w.project == domain.PUBLIC
                    else modelzoo_pb2.WEIGHTS_SCOPE_PROJECT,
                    file_name=w.key.rsplit("/", 1)[-1],
                )
            )
            chunks = self.zoo.read_object(w, EXPORT_CHUNK)
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                yield modelzoo_service_pb2.ExportWeightsResponse(chunk=chunk)

    async def ImportWeights(self, request, context):
        require(model_id=request.model_id)
        scope = _scope(request.scope, "scope")
        who = identity.current()
        if request.HasField("upload") and request.upload.key:
            view = await asyncio.to_thread(self.zoo.import_weights, request.model_id, request.upload, who, scope)
            return modelzoo_service_pb2.ImportWeightsResponse(model=model_to_proto(view))
        # from the sources: wait for the pull here, not on a thread of the pool every RPC shares
        model, pull = await asyncio.to_thread(self.zoo.start_import, request.model_id)
        while not (state := pull.snapshot()).final:
            await asyncio.sleep(PULL_POLL_S)
        if state.error is not None:
            raise state.error
        view = await asyncio.to_thread(self.zoo.get_model, model.id, who.project)
        return modelzoo_service_pb2.ImportWeightsResponse(model=model_to_proto(view))

    async def UploadWeights(self, request_iterator, context):
        if self.zoo.work_dir:
            self.zoo.work_dir.mkdir(parents=True, exist_ok=True)  # the first upload after start
        folder = Path(tempfile.mkdtemp(prefix="zoo-upload-", dir=self.zoo.work_dir if self.zoo.work_dir else None))
        try:
            header = None
            size = 0
            path = folder / "upload.pth"
            with open(path, "wb") as f:
                async for part in request_iterator:
                    kind = part.WhichOneof("part")
                    if header is None:
                        if kind != "header":
                            raise InvalidArgument({"header": "the first message must be the header"})
                        header = part.header
                        if not header.model_id:
                            raise InvalidArgument({"header.model_id": "must name a model"})
                        scope = _scope(header.scope, "header.scope")
                        if len(header.origin) > MAX_ORIGIN:
                            raise InvalidArgument({"header.origin": f"at most {MAX_ORIGIN} characters"})
                        # refuse a wrong model or scope before the file is sent
                        await asyncio.to_thread(self.zoo.check_upload, header.model_id, identity.current(), scope)
                        continue
                    if kind == "header":
                        raise InvalidArgument({"header": "only the first message may be a header"})
                    size += len(part.chunk)
                    if size > self.max_upload_bytes:
                        raise InvalidArgument({"chunk": f"the file is larger than {self.max_upload_bytes} bytes"})
                    f.write(part.chunk)
            if header is None:
                raise InvalidArgument({"header": "the stream was empty"})
            view = await asyncio.to_thread(
                self.zoo.import_uploaded_file,
                header.model_id,
                path,
                header.sha256,
                header.size_bytes,
                identity.current(),
                scope,
                header.origin,
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        return modelzoo_service_pb2.UploadWeightsResponse(model=model_to_proto(view))

    async def RegisterTrainedModel(self, request, context):
        w = request.weights
        req = TrainedModelInput(
            task_id=request.task_id,
            name=request.name,
            base_model_id=request.base_model_id,
            task_type=request.task_type,
            library=request.library,
            architecture=request.architecture,
            class_names=tuple(request.class_names),
            dataset_id=request.dataset_id,
            dataset_version_id=request.dataset_version_id,
            metrics=dict(request.metrics),
            weights_bucket=w.bucket,
            weights_key=w.key,
            weights_sha256=w.sha256,
            weights_size_bytes=w.size_bytes,
            default_input_size=request.default_input_size,
            mean=tuple(request.mean),
            std=tuple(request.std),
            request_id=request.request_id,
        )
        view = await asyncio.to_thread(self.zoo.register_trained_model, req, _project())
        return modelzoo_service_pb2.RegisterTrainedModelResponse(model=model_to_proto(view))

    async def DeleteTrainedModel(self, request, context):
        require(model_id=request.model_id)
        project = _project()
        await asyncio.to_thread(self.zoo.get_trained_model_row, request.model_id, project)  # checks, NOT_FOUND
        users = await self.training.active_users(request.model_id) if self.training is not None else []
        if users:
            raise FailedPrecondition(
                f"trained model {request.model_id} is in use: training task(s) {', '.join(users[:5])} start from "
                "it and have not ended; cancel them or wait for them to end",
                reason="MODEL_IN_USE",
                metadata={"model_id": request.model_id, "task_id": users[0]},
            )
        await asyncio.to_thread(self.zoo.delete_trained_model, request.model_id, project)
        return modelzoo_service_pb2.DeleteTrainedModelResponse()

    async def ListPresets(self, request, context):
        presets, token = await asyncio.to_thread(
            self.zoo.list_presets,
            request.task_type,
            request.data_type,
            request.page_size,
            request.page_token,
            _project(),
        )
        return modelzoo_service_pb2.ListPresetsResponse(
            presets=[preset_to_proto(p) for p in presets], next_page_token=token
        )

    async def GetPreset(self, request, context):
        require(preset_id=request.preset_id)
        view = await asyncio.to_thread(self.zoo.preset_view, request.preset_id, _project())
        return modelzoo_service_pb2.GetPresetResponse(preset=preset_to_proto(view))
