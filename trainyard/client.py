"""trainyard's Python SDK: one `Client` for the whole flow, over the gateway's gRPC API.

    from trainyard.client import Client

    with Client("127.0.0.1:50051", token) as ty:
        ds = ty.datasets.upload("shapes.zip", name="shapes")
        best = ty.recommend(task_type="classification", dataset_id=ds.id)[0]
        task = ty.training.create(name="shapes-v1", task_type="classification",
                                  dataset_id=ds.id, model_id=best.model_id)
        for event in ty.training.watch(task.id):
            ...
        print(ty.training.get(task.id).metrics)

Methods return the generated protobuf messages (trainyard.<area>.v1.*_pb2), so the generated
stubs stay the reference for every field; `enum_name(message, field)` reads any enum field as its
short name ("succeeded", not 4) and `to_dict(message)` gives a whole result with enum names. Every
RPC of the API has a call here (`SDK_CALLS` maps each to it); Lists come back whole (`list`) or as
lazy iterators (`iter`, or `iterate("ListModels", ...)` for any List), streams as iterators.
Calls retry with exponential backoff on UNAVAILABLE;
creates carry an auto-generated request_id so a retried create never makes a second resource.
Failures raise TrainyardError subclasses (NotFoundError, InvalidArgumentError with
`.violations`, PermissionDeniedError, ResourceExhaustedError with `.retry_after` ...).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import random
import tarfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import grpc
import tenacity
from google.protobuf import message_factory
from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from trainyard.auth.v1 import auth_pb2, auth_service_pb2, auth_service_pb2_grpc
from trainyard.common.v1 import common_pb2
from trainyard.dataset.v1 import dataset_pb2, dataset_service_pb2, dataset_service_pb2_grpc
from trainyard.inference.v1 import inference_pb2, inference_service_pb2, inference_service_pb2_grpc
from trainyard.modelzoo.v1 import modelzoo_pb2, modelzoo_service_pb2, modelzoo_service_pb2_grpc
from trainyard.recommend.v1 import recommend_pb2, recommend_service_pb2, recommend_service_pb2_grpc
from trainyard.training.v1 import evaluation_pb2, training_pb2, training_service_pb2, training_service_pb2_grpc

ADDRESS_ENV = "TRAINYARD_GATEWAY_ADDRESS"
TOKEN_ENV = "TRAINYARD_TOKEN"
CHUNK_SIZE = 1024 * 1024
TERMINAL_STATES = frozenset(
    {training_pb2.TASK_STATE_SUCCEEDED, training_pb2.TASK_STATE_FAILED, training_pb2.TASK_STATE_CANCELLED}
)
PULL_FINAL_STATES = frozenset(
    {modelzoo_pb2.PULL_STATE_STORED, modelzoo_pb2.PULL_STATE_ALREADY_IN_STORE, modelzoo_pb2.PULL_STATE_FAILED}
)
BUNDLE_SCHEMA = "trainyard.weights.bundle/v1"
BUNDLE_MANIFEST = "manifest.json"


# -- errors -------------------------------------------------------------------------------------
class TrainyardError(Exception):
    """A failed call: `.code` (grpc.StatusCode), `.message`, `.reason` (ErrorInfo), `.violations`
    ({field: why} from BadRequest), `.retry_after` (seconds from RetryInfo, or None), `.metadata`."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        violations: dict[str, str] | None = None,
        retry_after: float | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.reason = reason
        self.violations = dict(violations or {})
        self.retry_after = retry_after
        self.metadata = dict(metadata or {})
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.violations and not all(f"{k}: " in self.message for k in self.violations):
            text += " (" + "; ".join(f"{k}: {v}" for k, v in self.violations.items()) + ")"
        return text


class InvalidArgumentError(TrainyardError):
    pass


class NotFoundError(TrainyardError):
    pass


class AlreadyExistsError(TrainyardError):
    pass


class PermissionDeniedError(TrainyardError):
    pass


class UnauthenticatedError(TrainyardError):
    pass


class FailedPreconditionError(TrainyardError):
    pass


class ResourceExhaustedError(TrainyardError):
    pass


class UnavailableError(TrainyardError):
    pass


class DeadlineExceededError(TrainyardError):
    pass


_ERRORS: dict[grpc.StatusCode, type[TrainyardError]] = {
    grpc.StatusCode.DATA_LOSS: TrainyardError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
}


def error_from_rpc(error: grpc.RpcError) -> TrainyardError:
    """The typed exception for a failed call, with its google.rpc details decoded."""
    from kernel.errors import field_violations

    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = (error.details() if hasattr(error, "details") else "") or code.name.lower()
    reason, retry_after, metadata = "", None, {}
    try:
        violations = field_violations(error)
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - a status without well-formed details
        violations, status = {}, None
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
    cls = _ERRORS.get(code, TrainyardError)
    return cls(code, message, reason=reason, violations=violations, retry_after=retry_after, metadata=metadata)


# -- enum names ---------------------------------------------------------------------------------
def _enum(enum_type, prefix: str, value: Any, field: str) -> int:
    """Accept an enum number, its full name (TASK_TYPE_DETECTION) or its short name (detection)."""
    if value is None or value == "":
        return 0
    if isinstance(value, int):
        return value
    text = str(value).strip().upper().replace("-", "_")
    for name in (text, f"{prefix}{text}"):
        if name in enum_type.keys():
            return enum_type.Value(name)
    choices = ", ".join(short_name(n, prefix) for n in enum_type.keys() if not n.endswith("UNSPECIFIED"))
    raise InvalidArgumentError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"{field}: unknown value {value!r}; expected one of {choices}",
        violations={field: f"expected one of {choices}"},
    )


def short_name(name: str, prefix: str) -> str:
    return name[len(prefix) :].lower() if name.startswith(prefix) else name.lower()


def _prefix(enum: EnumDescriptor) -> str:
    """The prefix every value of a Buf-style enum shares: TASK_STATE_ of TASK_STATE_UNSPECIFIED."""
    first = enum.values_by_number.get(0)
    return first.name.removesuffix("UNSPECIFIED") if first is not None else ""


def enum_name(message: Message, field: str) -> str | list[str]:
    """An enum field of any message as its short name: enum_name(task, "state") == "succeeded" (a
    repeated enum field gives a list). TypeError for a field that is not an enum."""
    descriptor = message.DESCRIPTOR.fields_by_name.get(field)
    if descriptor is None or descriptor.enum_type is None:
        raise TypeError(f"{message.DESCRIPTOR.name}.{field} is not an enum field")
    enum = descriptor.enum_type
    value = getattr(message, field)

    def one(number: int) -> str:
        known = enum.values_by_number.get(number)
        return short_name(known.name, _prefix(enum)) if known is not None else str(number)

    return [one(v) for v in value] if descriptor.is_repeated else one(value)


def to_dict(message: Message) -> dict[str, Any]:
    """A result as plain Python: enum fields by short name ("succeeded"), timestamps as datetimes, nested
    messages as dicts, maps as dicts; unset fields left out, bytes kept as bytes."""
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {k: _plain(value_field, v) for k, v in value.items()}
        elif field.is_repeated:
            out[field.name] = [_plain(field, v) for v in value]
        else:
            out[field.name] = _plain(field, value)
    return out


def _plain(field: FieldDescriptor, value: Any) -> Any:
    if field.enum_type is not None:
        known = field.enum_type.values_by_number.get(value)
        return short_name(known.name, _prefix(field.enum_type)) if known is not None else value
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return value.ToDatetime(tzinfo=UTC) if value.seconds or value.nanos else None
        return to_dict(value)
    return value


# Every RPC the SDK makes, by full method name ("trainyard.training.v1.TrainingService/CreateTrainingTask"),
# and the SDK call that makes it; a test checks that every RPC of the API is here.
SDK_CALLS: dict[str, str] = {}


def _rpc(*methods: str):
    """Marks the SDK call that makes these RPCs ("TrainingService/CreateTrainingTask")."""

    def mark(fn):
        for method in methods:
            service, _, name = method.partition("/")
            area = service.removesuffix("Service").lower().replace("recommendation", "recommend")
            SDK_CALLS[f"trainyard.{area}.v1.{service}/{name}"] = fn.__qualname__
        return fn

    return mark


def task_type(value: Any) -> int:
    return _enum(common_pb2.TaskType, "TASK_TYPE_", value, "task_type")


def task_type_name(value: int) -> str:
    return short_name(common_pb2.TaskType.Name(value), "TASK_TYPE_")


def state_name(value: int) -> str:
    return short_name(training_pb2.TaskState.Name(value), "TASK_STATE_")


def trial_state_name(value: int) -> str:
    return short_name(training_pb2.TrialState.Name(value), "TRIAL_STATE_")


def evaluation_state_name(value: int) -> str:
    return short_name(evaluation_pb2.EvaluationState.Name(value), "EVALUATION_STATE_")


def case_kind_name(value: int) -> str:
    return short_name(evaluation_pb2.CaseErrorKind.Name(value), "CASE_ERROR_KIND_")


def split(value: Any) -> int:
    return _enum(common_pb2.Split, "SPLIT_", value, "splits")


EVALUATION_FINAL_STATES = frozenset(
    {
        evaluation_pb2.EVALUATION_STATE_SUCCEEDED,
        evaluation_pb2.EVALUATION_STATE_FAILED,
        evaluation_pb2.EVALUATION_STATE_CANCELLED,
    }
)


def pull_state_name(value: int) -> str:
    return short_name(modelzoo_pb2.PullState.Name(value), "PULL_STATE_")


def weight_status_name(value: int) -> str:
    return short_name(modelzoo_pb2.WeightStatus.Name(value), "WEIGHT_STATUS_")


def weights_selection(
    model_ids: Iterable[str] = (), *, family: str = "", task_type: Any = None, presets: Iterable[str] = ()
) -> modelzoo_pb2.WeightsSelection:
    """Catalog models by id, family, task type or preset (ModelZooService.PullWeights / ExportWeights)."""
    return modelzoo_pb2.WeightsSelection(
        model_ids=list(model_ids),
        family=family,
        task_type=globals()["task_type"](task_type),
        preset_ids=list(presets),
    )


def make_hyperparameters(**values: Any) -> common_pb2.Hyperparameters:
    """Hyperparameters from keyword values, enum fields by name: make_hyperparameters(epochs=5,
    optimizer="sgd", lr_schedule="one_cycle"). None leaves a field unset (the recipe's default)."""
    hp = common_pb2.Hyperparameters()
    for name, value in values.items():
        field = hp.DESCRIPTOR.fields_by_name.get(name)
        if field is None:
            known = ", ".join(f.name for f in hp.DESCRIPTOR.fields)
            raise InvalidArgumentError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"no hyperparameter {name!r}; one of {known}",
                violations={f"hyperparameters.{name}": "unknown hyperparameter"},
            )
        if value is None:
            continue
        if field.enum_type is not None:
            value = _enum(_enum_wrapper(field.enum_type), _prefix(field.enum_type), value, f"hyperparameters.{name}")
        setattr(hp, name, value)
    return hp


def search_parameter(text: str) -> training_pb2.SearchParameter:
    """One searched hyperparameter from text: "learning_rate" (its default range),
    "learning_rate=1e-4:1e-2:log", "batch_size=16:64:step=16" or "optimizer=sgd,adamw" (choices)."""
    name, _, spec = text.partition("=")
    param = training_pb2.SearchParameter(name=name.strip())
    spec = spec.strip()
    if not spec:
        return param
    if ":" not in spec:
        param.choices.extend(c.strip() for c in spec.split(",") if c.strip())
        return param
    low, high, *flags = spec.split(":")
    try:
        param.low, param.high = float(low), float(high)
        for flag in flags:
            if flag == "log":
                param.log = True
            elif flag.startswith("step="):
                param.step = float(flag.removeprefix("step="))
            else:
                raise ValueError(flag)
    except ValueError:
        raise InvalidArgumentError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"search parameter {text!r}: expected NAME, NAME=LOW:HIGH[:log|:step=S] or NAME=A,B,...",
            violations={"search.parameters": f"cannot read {text!r}"},
        ) from None
    return param


def hyperparameter_search(
    method: Any = None,
    parameters: list[str | training_pb2.SearchParameter] | None = None,
    *,
    max_trials: int = 0,
    parallelism: int = 0,
    max_duration_seconds: int = 0,
    objective_metric: str = "",
    direction: Any = None,
    pruning: Any = None,
    warmup_epochs: int = 0,
    startup_trials: int = 0,
    min_epochs: int = 0,
    reduction_factor: int = 0,
    seed: int = 0,
) -> training_pb2.HyperparameterSearch:
    """A search spec: method random | tpe | grid; parameters as search_parameter() text or messages
    (none: the model's default space); pruning none | median | successive_halving (or "asha")."""
    if isinstance(pruning, str) and pruning.strip().lower() == "asha":
        pruning = "successive_halving"
    return training_pb2.HyperparameterSearch(
        method=_enum(training_pb2.SearchMethod, "SEARCH_METHOD_", method, "search.method"),
        parameters=[search_parameter(p) if isinstance(p, str) else p for p in parameters or []],
        max_trials=max_trials,
        parallelism=parallelism,
        max_duration_seconds=max_duration_seconds,
        objective_metric=objective_metric,
        direction=_enum(training_pb2.ObjectiveDirection, "OBJECTIVE_DIRECTION_", direction, "search.direction"),
        pruning=training_pb2.Pruning(
            method=_enum(training_pb2.PruningMethod, "PRUNING_METHOD_", pruning, "search.pruning.method"),
            warmup_epochs=warmup_epochs,
            startup_trials=startup_trials,
            min_epochs=min_epochs,
            reduction_factor=reduction_factor,
        ),
        seed=seed,
    )


# -- the client ---------------------------------------------------------------------------------
class Client:
    """A connection to the gateway.

    address: "host:port" of the gateway; token: an API key or short-lived token.
    tls: use TLS (root_certificates: PEM bytes of the CA, default the system roots).
    timeout: default seconds per unary call; retries: attempts after the first on UNAVAILABLE.
    interceptors: grpc client interceptors wrapped around the channel (tracing, logging).
    """

    def __init__(
        self,
        address: str,
        token: str,
        *,
        tls: bool = False,
        root_certificates: bytes | None = None,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 0.25,
        max_message_bytes: int = 64 * 1024 * 1024,
        interceptors: Sequence[Any] = (),
    ) -> None:
        if not address:
            raise ValueError(f"no gateway address: pass one or set {ADDRESS_ENV}")
        if not token:
            raise ValueError(f"no token: pass one or set {TOKEN_ENV}")
        self.address = address
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._metadata = (("authorization", f"Bearer {token}"),)
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        if tls:
            creds = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self.channel = grpc.secure_channel(address, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(address, options=options)
        if interceptors:
            self.channel = grpc.intercept_channel(self.channel, *interceptors)
        self._datasets = dataset_service_pb2_grpc.DatasetServiceStub(self.channel)
        self._zoo = modelzoo_service_pb2_grpc.ModelZooServiceStub(self.channel)
        self._recommend = recommend_service_pb2_grpc.RecommendationServiceStub(self.channel)
        self._training = training_service_pb2_grpc.TrainingServiceStub(self.channel)
        self._auth = auth_service_pb2_grpc.AuthServiceStub(self.channel)
        self._inference = inference_service_pb2_grpc.InferenceServiceStub(self.channel)
        self.datasets = Datasets(self)
        self.evaluations = Evaluations(self)
        self.models = Models(self)
        self.weights = Weights(self)
        self.training = Training(self)
        self.keys = Keys(self)
        self.projects = Projects(self)

    @classmethod
    def from_env(cls, address: str | None = None, token: str | None = None, home: str | Path | None = None, **kw):
        """Address and token from the arguments, else TRAINYARD_GATEWAY_ADDRESS / TRAINYARD_TOKEN,
        else the local stack ($TRAINYARD_HOME/stack.json and admin-token)."""
        address = address or os.environ.get(ADDRESS_ENV) or ""
        token = token or os.environ.get(TOKEN_ENV) or ""
        if not address or not token:
            stack_address, stack_token = local_stack_credentials(home)
            address = address or stack_address
            token = token or stack_token
        if not address:
            raise ValueError(
                f"no gateway address: pass --address, set {ADDRESS_ENV}, or start a local stack (trainyard stack up)"
            )
        if not token:
            raise ValueError(f"no token: pass --token, set {TOKEN_ENV}, or start a local stack (trainyard stack up)")
        return cls(address, token, **kw)

    # -- plumbing -------------------------------------------------------------------------------
    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def retrying(self, fn: Callable[[], Any], *, retry: bool = True) -> Any:
        """fn() again after UNAVAILABLE (up to `retries` more times, exponential backoff with jitter: tenacity);
        any other gRPC error, or the last one, raised as the SDK's error. Calls and uploads with a request_id
        are safe to resend."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(
                lambda exc: isinstance(exc, grpc.RpcError) and exc.code() == grpc.StatusCode.UNAVAILABLE
            ),
            stop=tenacity.stop_after_attempt(self.retries + 1 if retry else 1),
            wait=tenacity.wait_random_exponential(multiplier=self.backoff, max=10.0),
            reraise=True,
        )
        try:
            return retrying(fn)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    def _sleep_before_retry(self, attempt: int, error: grpc.RpcError) -> None:
        """The wait of `retrying` (tenacity's random exponential: full jitter), for the watches, which resume
        a stream after its last event instead of calling again."""
        time.sleep(random.uniform(0, min(10.0, self.backoff * 2**attempt)))

    def call(self, method: Callable, request: Any, *, timeout: float | None = None, retry: bool = True) -> Any:
        """One unary call with the token, the default deadline and retries on UNAVAILABLE."""
        return self.retrying(
            lambda: method(request, timeout=timeout or self.timeout, metadata=self._metadata), retry=retry
        )

    def _method(self, rpc: str):
        """(stub method, request class, the repeated field of the response) of an RPC by its name."""
        for stub, module in (
            (self._datasets, dataset_service_pb2),
            (self._zoo, modelzoo_service_pb2),
            (self._recommend, recommend_service_pb2),
            (self._training, training_service_pb2),
            (self._auth, auth_service_pb2),
            (self._inference, inference_service_pb2),
        ):
            for service in module.DESCRIPTOR.services_by_name.values():
                method = service.methods_by_name.get(rpc)
                if method is not None:
                    items = [f.name for f in method.output_type.fields if f.is_repeated and f.message_type]
                    request_class = message_factory.GetMessageClass(method.input_type)
                    return getattr(stub, rpc), request_class, (items[0] if items else "")
        raise ValueError(f"no RPC named {rpc!r}")

    def iterate(self, rpc: str, **fields: Any) -> Iterator[Any]:
        """Every item of a paged List RPC, fetched a page at a time as the iteration goes:
        iterate("ListModels", task_type="classification", family="resnet"). Enum fields take names."""
        method, request_class, items = self._method(rpc)
        if "page_token" not in request_class.DESCRIPTOR.fields_by_name or not items:
            raise ValueError(f"{rpc} is not a paged List")
        request = request_class()
        for name, value in fields.items():
            field = request_class.DESCRIPTOR.fields_by_name.get(name)
            if field is None:
                raise ValueError(f"{rpc} has no field {name!r}")
            if field.enum_type is not None:
                enum_wrapper = _enum_wrapper(field.enum_type)
                value = _enum(enum_wrapper, _prefix(field.enum_type), value, name)
            setattr(request, name, value)
        return _iter_pages(self, method, request, items)

    # -- flow -----------------------------------------------------------------------------------
    @_rpc("RecommendationService/Recommend")
    def recommendation(
        self,
        task_type: Any,
        dataset_id: str = "",
        *,
        data_type: Any = None,
        preference: Any = None,
        max_params: int = 0,
        max_training_seconds: float = 0.0,
        max_latency_ms: float = 0.0,
        device_class: str = "",
        max_suggestions: int = 0,
    ) -> recommend_service_pb2.RecommendResponse:
        """Ranked model suggestions with the dataset statistics the ranking used (dataset_factors).
        Pass a chosen suggestion whole to training.create(suggestion=...): its model, transfer
        strategy and hyperparameters are then the task's, and the task records it."""
        request = recommend_service_pb2.RecommendRequest(
            task_type=globals()["task_type"](task_type),
            dataset_id=dataset_id,
            data_type=_enum(common_pb2.DataType, "DATA_TYPE_", data_type, "data_type"),
            preference=_enum(common_pb2.TrainingPreference, "TRAINING_PREFERENCE_", preference, "preference"),
            max_params=max_params,
            max_training_seconds=max_training_seconds,
            max_latency_ms=max_latency_ms,
            device_class=device_class,
            max_suggestions=max_suggestions,
        )
        return self.call(self._recommend.Recommend, request)

    def recommend(self, task_type: Any, dataset_id: str = "", **kw: Any) -> list[recommend_pb2.Suggestion]:
        """Ranked model suggestions for a task type (and dataset); best first (see recommendation())."""
        return list(self.recommendation(task_type, dataset_id, **kw).suggestions)

    @_rpc("InferenceService/Predict")
    def predict(
        self,
        model_id: str,
        images: list[str | Path | bytes | tuple[str, str]],
        *,
        threshold: float | None = None,
        top_k: int = 0,
        draw: bool = False,
        timeout: float | None = None,
    ) -> inference_service_pb2.PredictResponse:
        """Run a trained model's ONNX export on images: file paths, raw bytes, or (dataset_version_id,
        case_id) pairs for cases of a dataset; one Prediction per image, in order (up to 64 per call)."""
        inputs = []
        for item in images:
            if isinstance(item, tuple):
                version_id, case_id = item
                ref = inference_pb2.CaseRef(dataset_version_id=version_id, case_id=case_id)
                inputs.append(inference_pb2.ImageInput(case=ref, name=case_id))
            elif isinstance(item, bytes):
                inputs.append(inference_pb2.ImageInput(image=item, name=f"image {len(inputs)}"))
            else:
                path = Path(item)
                if not path.is_file():
                    raise InvalidArgumentError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"{path}: no such file",
                        violations={f"images[{len(inputs)}]": f"{path}: no such file"},
                    )
                inputs.append(inference_pb2.ImageInput(image=path.read_bytes(), name=path.name))
        request = inference_service_pb2.PredictRequest(model_id=model_id, images=inputs, top_k=top_k, draw=draw)
        if threshold is not None:
            request.threshold = threshold
        return self.call(self._inference.Predict, request, timeout=timeout)

    @_rpc("InferenceService/GetModelInfo")
    def model_info(self, model_id: str) -> inference_pb2.ModelInfo:
        """What a trained model's ONNX export says about itself (classes, input size, threshold)."""
        request = inference_service_pb2.GetModelInfoRequest(model_id=model_id)
        return self.call(self._inference.GetModelInfo, request).model

    @_rpc("AuthService/WhoAmI")
    def whoami(self) -> auth_pb2.ApiKey:
        return self.call(self._auth.WhoAmI, auth_service_pb2.WhoAmIRequest()).key

    @_rpc("AuthService/CreateToken")
    def create_token(self, ttl_seconds: int = 3600, role: Any = None) -> auth_service_pb2.CreateTokenResponse:
        """A short-lived token acting as this client's key (at most its role)."""
        request = auth_service_pb2.CreateTokenRequest(
            ttl_seconds=ttl_seconds, role=_enum(auth_pb2.Role, "ROLE_", role, "role")
        )
        return self.call(self._auth.CreateToken, request)

    @_rpc("AuthService/ListAuditEntries")
    def audit(self, page_size: int = 50, method_contains: str = "") -> list[auth_pb2.AuditEntry]:
        """The newest audit entries of this project (admin only)."""
        request = auth_service_pb2.ListAuditEntriesRequest(page_size=page_size, method_contains=method_contains)
        return list(self.call(self._auth.ListAuditEntries, request).entries)


def _iter_pages(client: Client, method, request, field: str) -> Iterator:
    """Every item of a paged List, a page fetched when the previous one is used up."""
    while True:
        response = client.call(method, request)
        yield from getattr(response, field)
        if not response.next_page_token:
            return
        request.page_token = response.next_page_token


def _pages(client: Client, method, request, field: str, limit: int | None) -> list:
    """Every item of a paged List (or the first `limit`)."""
    return list(itertools.islice(_iter_pages(client, method, request, field), limit))


def _enum_wrapper(descriptor: EnumDescriptor):
    """The generated enum wrapper (Name, Value, keys) of an enum descriptor."""
    from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

    return EnumTypeWrapper(descriptor)


def _download_url(url: str, out: Path, sha256: str = "") -> Path:
    """Fetch a presigned URL into `out` (written to out.part, renamed when complete and its sha256 matches)."""
    import urllib.request

    if not url:
        raise FailedPreconditionError(
            grpc.StatusCode.FAILED_PRECONDITION, "the platform gave no download URL (no public object-store endpoint)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=600) as response, part.open("wb") as fh:  # noqa: S310 - presigned
            while chunk := response.read(CHUNK_SIZE):
                fh.write(chunk)
                digest.update(chunk)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise UnavailableError(grpc.StatusCode.UNAVAILABLE, f"download of {out.name} failed: {exc}") from None
    if sha256 and digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)
        raise TrainyardError(grpc.StatusCode.DATA_LOSS, f"{out.name}: the download does not match its sha256 {sha256}")
    part.replace(out)
    return out


@dataclass
class ImportReport:
    """An import's full report: its status, every warning, every rejected file (path, reason)."""

    status: dataset_pb2.ImportStatus
    warnings: list[str]
    rejected_files: list[dataset_pb2.RejectedFile]


class Datasets:
    def __init__(self, client: Client) -> None:
        self._c = client

    def check_name(self, name: str) -> None:
        """Refuse a dataset name before anything is uploaded: InvalidArgumentError for a bad one,
        AlreadyExistsError when the project has a dataset of that name (the service would refuse it only
        after the whole archive was sent)."""
        from kernel.fields import name_violation

        why = name_violation(name)
        if why is not None:
            raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, f"name: {why}", violations={"name": why})
        taken = next((d for d in self.iter() if d.name == name), None)
        if taken is not None:
            raise AlreadyExistsError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"a dataset named {name!r} already exists ({taken.id}); nothing was uploaded",
                metadata={"name": name, "dataset_id": taken.id},
            )

    def _stream(self, path: Path, first: Any, request_class, chunk_size: int, progress) -> Iterator:
        total = path.stat().st_size

        def requests() -> Iterator:
            yield first
            sent = 0
            if progress:
                progress(0, total)
            with path.open("rb") as fh:
                while chunk := fh.read(chunk_size):
                    sent += len(chunk)
                    yield request_class(chunk=chunk)
                    if progress:
                        progress(sent, total)

        return requests

    @_rpc("DatasetService/CreateDataset")
    def upload(
        self,
        path: str | Path,
        name: str,
        *,
        description: str = "",
        format: Any = None,
        val_fraction: float = 0.0,
        test_fraction: float = 0.0,
        split_seed: int = 0,
        task_type: Any = None,
        accept_partial: bool = False,
        ignore_index: int | None = None,
        drop_duplicates: bool = False,
        request_id: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        chunk_size: int = CHUNK_SIZE,
        timeout: float | None = None,
    ) -> dataset_pb2.Dataset:
        """Import an archive (zip, tar, tar.gz) as a new dataset; progress(sent_bytes, total_bytes).

        task_type picks the annotations when the archive holds several kinds (Oxford-IIIT Pet);
        accept_partial imports the good cases when some are bad instead of rejecting the archive;
        ignore_index is the mask value of unlabelled pixels (255 when None; e.g. 11 for a void value 11);
        drop_duplicates keeps one case of each group of identical images within a split.
        The name is checked first (check_name), unless a request_id is given (a retry of an upload
        whose answer was lost returns its dataset).
        """
        path = Path(path)
        if not path.is_file():
            raise InvalidArgumentError(
                grpc.StatusCode.INVALID_ARGUMENT, f"{path}: no such file", violations={"path": "no such file"}
            )
        if request_id is None:
            self.check_name(name)
        metadata = dataset_service_pb2.CreateDatasetMetadata(
            name=name,
            description=description,
            format=_enum(dataset_pb2.DatasetFormat, "DATASET_FORMAT_", format, "format"),
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            split_seed=split_seed,
            task_type=_enum(common_pb2.TaskType, "TASK_TYPE_", task_type, "task_type"),
            accept_partial=accept_partial,
            ignore_index=ignore_index,
            drop_duplicates=drop_duplicates,
            request_id=request_id or str(uuid.uuid4()),
        )

        requests = self._stream(
            path,
            dataset_service_pb2.CreateDatasetRequest(metadata=metadata),
            dataset_service_pb2.CreateDatasetRequest,
            chunk_size,
            progress,
        )
        stub = self._c._datasets.CreateDataset  # the same request_id makes a resent upload safe
        return self._c.retrying(lambda: stub(requests(), timeout=timeout, metadata=self._c._metadata).dataset)

    @_rpc("DatasetService/CreateDatasetVersion")
    def add_version(
        self,
        dataset_id: str,
        path: str | Path,
        *,
        mode: Any = None,
        format: Any = None,
        val_fraction: float = 0.0,
        test_fraction: float = 0.0,
        split_seed: int = 0,
        accept_partial: bool = False,
        ignore_index: int | None = None,
        drop_duplicates: bool = False,
        request_id: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        chunk_size: int = CHUNK_SIZE,
        timeout: float | None = None,
    ) -> dataset_pb2.DatasetVersion:
        """Upload an archive as the next version of a dataset: its cases are added (replacing those with
        the same source path), or replace all of them with mode="replace_all". The dataset is looked up
        first, so an unknown one fails before anything is sent."""
        path = Path(path)
        if not path.is_file():
            raise InvalidArgumentError(
                grpc.StatusCode.INVALID_ARGUMENT, f"{path}: no such file", violations={"path": "no such file"}
            )
        self.get(dataset_id)
        metadata = dataset_service_pb2.CreateDatasetVersionMetadata(
            dataset_id=dataset_id,
            mode=_enum(dataset_service_pb2.VersionMode, "VERSION_MODE_", mode, "mode"),
            format=_enum(dataset_pb2.DatasetFormat, "DATASET_FORMAT_", format, "format"),
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            split_seed=split_seed,
            accept_partial=accept_partial,
            ignore_index=ignore_index,
            drop_duplicates=drop_duplicates,
            request_id=request_id or str(uuid.uuid4()),
        )
        requests = self._stream(
            path,
            dataset_service_pb2.CreateDatasetVersionRequest(metadata=metadata),
            dataset_service_pb2.CreateDatasetVersionRequest,
            chunk_size,
            progress,
        )
        stub = self._c._datasets.CreateDatasetVersion  # the same request_id makes a resent upload safe
        return self._c.retrying(lambda: stub(requests(), timeout=timeout, metadata=self._c._metadata).version)

    @_rpc("DatasetService/ImportDataset")
    def import_object(
        self,
        key: str,
        *,
        bucket: str = "trainyard-uploads",
        name: str = "",
        dataset_id: str = "",
        mode: Any = None,
        description: str = "",
        format: Any = None,
        val_fraction: float = 0.0,
        test_fraction: float = 0.0,
        task_type: Any = None,
        accept_partial: bool = False,
        drop_duplicates: bool = False,
        request_id: str | None = None,
    ) -> dataset_pb2.ImportStatus:
        """Start importing an archive already in the object store's upload bucket (`key`), as a new dataset
        `name` or as the next version of `dataset_id`; returns at once with the import's first status
        (follow it with watch_import / wait_import)."""
        request = dataset_service_pb2.ImportDatasetRequest(
            source=common_pb2.ObjectRef(bucket=bucket, key=key),
            metadata=dataset_service_pb2.CreateDatasetMetadata(
                name=name,
                description=description,
                format=_enum(dataset_pb2.DatasetFormat, "DATASET_FORMAT_", format, "format"),
                val_fraction=val_fraction,
                test_fraction=test_fraction,
                task_type=globals()["task_type"](task_type),
                accept_partial=accept_partial,
                drop_duplicates=drop_duplicates,
                request_id=request_id or str(uuid.uuid4()),
            ),
            dataset_id=dataset_id,
            mode=_enum(dataset_service_pb2.VersionMode, "VERSION_MODE_", mode, "mode"),
        )
        return getattr(self._c.call(self._c._datasets.ImportDataset, request), "import")

    @_rpc("DatasetService/WatchImport")
    def watch_import(self, import_id: str) -> Iterator[dataset_pb2.ImportStatus]:
        """An import's status as it changes, until it succeeds or fails (reconnects on UNAVAILABLE)."""
        attempt = 0
        while True:
            stream = self._c._datasets.WatchImport(
                dataset_service_pb2.WatchImportRequest(import_id=import_id), metadata=self._c._metadata
            )
            try:
                for response in stream:
                    attempt = 0
                    yield response.status
                return
            except grpc.RpcError as exc:
                error = error_from_rpc(exc)
                # a stalled import will not move on by itself: only a lost connection is retried
                if error.code == grpc.StatusCode.UNAVAILABLE and error.reason != "IMPORT_STALLED":
                    if attempt < self._c.retries:
                        self._c._sleep_before_retry(attempt, exc)
                        attempt += 1
                        continue
                raise error from None
            finally:
                stream.cancel()

    def wait_import(self, import_id: str) -> dataset_pb2.ImportStatus:
        """Block until the import ends; its last status (state SUCCEEDED with dataset_id and version_id,
        or FAILED with the reason)."""
        statuses = list(self.watch_import(import_id))
        return statuses[-1] if statuses else self.report(import_id).status

    @_rpc("DatasetService/ExportDatasetVersion")
    def export(
        self, version_id: str, format: Any, out: str | Path | None = None
    ) -> dataset_service_pb2.ExportDatasetVersionResponse:
        """Write a version as a zip (coco, image_folder or mask_png) in the object store; with `out`, also
        download it there (through its presigned URL, checked against its sha256 when the store gives one)."""
        request = dataset_service_pb2.ExportDatasetVersionRequest(
            version_id=version_id, format=_enum(dataset_pb2.ExportFormat, "EXPORT_FORMAT_", format, "format")
        )
        response = self._c.call(self._c._datasets.ExportDatasetVersion, request, timeout=max(self._c.timeout, 600))
        if out is not None:
            _download_url(response.url, Path(out), response.archive.sha256)
        return response

    def iter(self, task_type: Any = None) -> Iterator[dataset_pb2.Dataset]:
        """Datasets of the project, a page at a time; with task_type, only those that can train it."""
        request = dataset_service_pb2.ListDatasetsRequest(task_type=globals()["task_type"](task_type), page_size=100)
        return _iter_pages(self._c, self._c._datasets.ListDatasets, request, "datasets")

    @_rpc("DatasetService/ListDatasets")
    def list(self, task_type: Any = None, *, limit: int | None = None) -> list[dataset_pb2.Dataset]:
        """Datasets of the project; with task_type, only those whose annotations can train it."""
        return list(itertools.islice(self.iter(task_type), limit))

    @_rpc("DatasetService/GetDataset")
    def get(self, dataset_id: str) -> dataset_pb2.Dataset:
        return self._c.call(
            self._c._datasets.GetDataset, dataset_service_pb2.GetDatasetRequest(dataset_id=dataset_id)
        ).dataset

    @_rpc("DatasetService/GetDatasetVersion")
    def version(self, version_id: str) -> dataset_pb2.DatasetVersion:
        request = dataset_service_pb2.GetDatasetVersionRequest(version_id=version_id)
        return self._c.call(self._c._datasets.GetDatasetVersion, request).version

    @_rpc("DatasetService/PreviewCases")
    def preview(
        self, dataset_id: str, count: int = 8, *, version_id: str = "", thumbnail_size: int = 0, seed: int = 0
    ) -> list[dataset_pb2.Case]:
        """Sample cases with their annotations drawn (case.preview_jpeg)."""
        request = dataset_service_pb2.PreviewCasesRequest(
            dataset_id=dataset_id, version_id=version_id, count=count, thumbnail_size=thumbnail_size, seed=seed
        )
        return list(self._c.call(self._c._datasets.PreviewCases, request).cases)

    @_rpc("DatasetService/DeleteDataset")
    def delete(self, dataset_id: str) -> None:
        self._c.call(self._c._datasets.DeleteDataset, dataset_service_pb2.DeleteDatasetRequest(dataset_id=dataset_id))

    @_rpc("DatasetService/GetImportReport")
    def report(self, import_id: str) -> ImportReport:
        """The full report of an import (every page): a version's `import_id`, or the `import_id` in the
        metadata of an import's error (`exc.metadata["import_id"]`)."""
        request = dataset_service_pb2.GetImportReportRequest(import_id=import_id, page_size=5000)
        first = self._c.call(self._c._datasets.GetImportReport, request)
        rejected = list(first.rejected_files)
        response = first
        while response.next_page_token:
            request.page_token = response.next_page_token
            response = self._c.call(self._c._datasets.GetImportReport, request)
            rejected.extend(response.rejected_files)
        return ImportReport(getattr(first, "import"), list(first.warnings), rejected)


class Models:
    def __init__(self, client: Client) -> None:
        self._c = client

    @staticmethod
    def _request(task_type, family, query, pretrain_dataset, max_params, weights_in_store, origin, page_size):
        return modelzoo_service_pb2.ListModelsRequest(
            task_type=task_type_fn(task_type),
            family=family,
            query=query,
            pretrain_dataset=pretrain_dataset,
            max_params=max_params,
            weights_in_store=weights_in_store,
            origin=origin,
            page_size=page_size,
        )

    def iter(
        self,
        task_type: Any = None,
        *,
        family: str = "",
        query: str = "",
        pretrain_dataset: str = "",
        max_params: int = 0,
        weights_in_store: bool = False,
        origin: str = "",
    ) -> Iterator[modelzoo_pb2.Model]:
        """Zoo models, a page at a time; origin "catalog" or "trained" (the project's trained models)."""
        request = self._request(
            task_type, family, query, pretrain_dataset, max_params, weights_in_store, origin, page_size=500
        )
        return _iter_pages(self._c, self._c._zoo.ListModels, request, "models")

    @_rpc("ModelZooService/ListModels")
    def list(
        self,
        task_type: Any = None,
        *,
        family: str = "",
        query: str = "",
        pretrain_dataset: str = "",
        max_params: int = 0,
        weights_in_store: bool = False,
        origin: str = "",
        limit: int | None = None,
    ) -> list[modelzoo_pb2.Model]:
        items = self.iter(
            task_type,
            family=family,
            query=query,
            pretrain_dataset=pretrain_dataset,
            max_params=max_params,
            weights_in_store=weights_in_store,
            origin=origin,
        )
        return list(itertools.islice(items, limit))

    def count(
        self, task_type: Any = None, *, family: str = "", query: str = "", origin: str = "", weights_in_store=False
    ) -> int:
        """How many models match (ListModels' total_size), without listing them."""
        request = self._request(task_type, family, query, "", 0, weights_in_store, origin, page_size=1)
        return self._c.call(self._c._zoo.ListModels, request).total_size

    def trained(self, task_type: Any = None) -> list[modelzoo_pb2.Model]:
        """The project's trained models (trained/<task id>, named by their task's name), newest first."""
        items = self.list(task_type, origin="trained")
        return sorted(items, key=lambda m: (m.create_time.seconds, m.id), reverse=True)

    @_rpc("ModelZooService/ListModelFamilies")
    def families(self, task_type: Any = None) -> list[modelzoo_pb2.ModelFamily]:
        request = modelzoo_service_pb2.ListModelFamiliesRequest(task_type=task_type_fn(task_type), page_size=500)
        return _pages(self._c, self._c._zoo.ListModelFamilies, request, "families", None)

    @_rpc("ModelZooService/GetModel")
    def get(self, model_id: str) -> modelzoo_pb2.Model:
        return self._c.call(self._c._zoo.GetModel, modelzoo_service_pb2.GetModelRequest(model_id=model_id)).model

    @_rpc("ModelZooService/ImportWeights")
    def import_weights(self, model_id: str, timeout: float = 600.0) -> modelzoo_pb2.Model:
        """Bring a catalog model's pre-trained weights into the store from the configured sources
        (idempotent; pull() does the same for many models, with progress)."""
        request = modelzoo_service_pb2.ImportWeightsRequest(model_id=model_id)
        return self._c.call(self._c._zoo.ImportWeights, request, timeout=timeout).model

    @_rpc("ModelZooService/DeleteTrainedModel")
    def delete(self, model_id: str) -> None:
        """Remove a trained model (trained/<task id>) from the project's zoo; refused while a task uses it."""
        request = modelzoo_service_pb2.DeleteTrainedModelRequest(model_id=model_id)
        self._c.call(self._c._zoo.DeleteTrainedModel, request)

    @_rpc("ModelZooService/PullWeights")
    def pull(
        self,
        model_ids: Iterable[str] = (),
        *,
        family: str = "",
        task_type: Any = None,
        presets: Iterable[str] = (),
        progress: Callable[[modelzoo_pb2.WeightsPull], None] | None = None,
        timeout: float | None = None,
    ) -> list[modelzoo_pb2.WeightsPull]:
        """Fetch the public weights of the selected catalog models from the zoo's configured sources
        into the store; progress(pull) gets every state change and byte count. Returns each model's
        final state: STORED, ALREADY_IN_STORE or FAILED (with error_code and error_message naming the
        URLs tried). Reconnects on UNAVAILABLE: a pull in progress is joined, not restarted."""
        request = modelzoo_service_pb2.PullWeightsRequest(
            selection=weights_selection(model_ids, family=family, task_type=task_type, presets=presets)
        )
        final: dict[str, modelzoo_pb2.WeightsPull] = {}

        def follow() -> list[modelzoo_pb2.WeightsPull]:
            stream = self._c._zoo.PullWeights(request, timeout=timeout, metadata=self._c._metadata)
            try:
                for response in stream:
                    pull = response.pull
                    if progress:
                        progress(pull)
                    if pull.state in PULL_FINAL_STATES:
                        final[pull.model_id] = pull
                return list(final.values())
            finally:
                stream.cancel()

        return self._c.retrying(follow)

    @_rpc("ModelZooService/UploadWeights")
    def upload_weights(
        self,
        source: str | Path | IO[bytes],
        model_id: str,
        *,
        public: bool = False,
        sha256: str = "",
        size_bytes: int = 0,
        origin: str = "",
        progress: Callable[[int, int], None] | None = None,
        chunk_size: int = CHUNK_SIZE,
        timeout: float | None = None,
    ) -> modelzoo_pb2.Model:
        """Upload a weight file (a path or a binary file object) as a catalog model's weights: the
        project's own, or with public=True (platform operators only) every project's. The service
        checks the sha256 and size (computed here from a path when not given) and that the file loads
        into the architecture with a strict key match. progress(sent_bytes, total_bytes). An unknown
        model fails before anything is sent."""
        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                raise InvalidArgumentError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"{path}: no such file", violations={"path": "no such file"}
                )
            if not sha256:
                sha256, size_bytes = _file_sha256(path)
            with path.open("rb") as fh:
                return self.upload_weights(
                    fh,
                    model_id,
                    public=public,
                    sha256=sha256,
                    size_bytes=size_bytes,
                    origin=origin or path.name,
                    progress=progress,
                    chunk_size=chunk_size,
                    timeout=timeout,
                )
        self.get(model_id)
        header = modelzoo_service_pb2.UploadWeightsHeader(
            model_id=model_id,
            size_bytes=size_bytes,
            sha256=sha256,
            scope=modelzoo_pb2.WEIGHTS_SCOPE_PUBLIC if public else modelzoo_pb2.WEIGHTS_SCOPE_PROJECT,
            origin=origin[:512],
        )

        def requests() -> Iterator[modelzoo_service_pb2.UploadWeightsRequest]:
            yield modelzoo_service_pb2.UploadWeightsRequest(header=header)
            sent = 0
            if progress:
                progress(0, size_bytes)
            while chunk := source.read(chunk_size):
                sent += len(chunk)
                yield modelzoo_service_pb2.UploadWeightsRequest(chunk=chunk)
                if progress:
                    progress(sent, size_bytes)

        try:  # not retried: the stream cannot be read twice
            return self._c._zoo.UploadWeights(requests(), timeout=timeout, metadata=self._c._metadata).model
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    @_rpc("ModelZooService/ListPresets")
    def presets(self, task_type: Any = None, data_type: Any = None) -> list[modelzoo_pb2.Preset]:
        """Specialized training presets, each saying whether its weights are ready (weight_status)
        and which model to pull when not (weights_model_id)."""
        request = modelzoo_service_pb2.ListPresetsRequest(
            task_type=task_type_fn(task_type),
            data_type=_enum(common_pb2.DataType, "DATA_TYPE_", data_type, "data_type"),
            page_size=500,
        )
        return _pages(self._c, self._c._zoo.ListPresets, request, "presets", None)

    @_rpc("ModelZooService/GetPreset")
    def preset(self, preset_id: str) -> modelzoo_pb2.Preset:
        request = modelzoo_service_pb2.GetPresetRequest(preset_id=preset_id)
        return self._c.call(self._c._zoo.GetPreset, request).preset


task_type_fn = task_type


def _file_sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@dataclass(frozen=True)
class BundleImport:
    """What `Weights.import_bundle` did with one file of a bundle."""

    model_id: str
    sha256: str
    outcome: str  # "stored" | "already in store"
    model: modelzoo_pb2.Model


class _StreamedFile(io.RawIOBase):
    """A file's bytes as they arrive in an ExportWeights stream (tarfile reads exactly size_bytes)."""

    def __init__(self, responses: Iterator, size: int, progress: Callable[[int], None] | None) -> None:
        self.responses = responses
        self.remaining = size
        self.buffer = b""
        self.digest = hashlib.sha256()
        self.progress = progress

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        want = self.remaining + len(self.buffer) if n is None or n < 0 else n
        while len(self.buffer) < want and self.remaining > 0:
            response = next(self.responses, None)
            if response is None or response.WhichOneof("part") != "chunk":
                raise OSError("the export stream ended inside a file")
            chunk = response.chunk[: self.remaining]
            self.remaining -= len(chunk)
            self.digest.update(chunk)
            self.buffer += chunk
            if self.progress:
                self.progress(len(chunk))
        out, self.buffer = self.buffer[:want], self.buffer[want:]
        return out


class Weights:
    """Bundles of pre-trained weights for sites without internet: a tar of the weight files with a
    manifest of their hashes (`manifest.json`, schema trainyard.weights.bundle/v1)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    @_rpc("ModelZooService/ExportWeights")
    def bundle(
        self,
        out: str | Path,
        model_ids: Iterable[str] = (),
        *,
        family: str = "",
        task_type: Any = None,
        presets: Iterable[str] = (),
        progress: Callable[[int, str], None] | None = None,
        timeout: float | None = None,
    ) -> dict:
        """Write the stored weights of the selected catalog models to a tar at `out` (written to
        `out.part` first, renamed when every file's sha256 matched); returns the manifest.
        progress(bytes_received, model_id). FAILED_PRECONDITION names models not in the store."""
        out = Path(out)
        part = out.with_name(out.name + ".part")
        request = modelzoo_service_pb2.ExportWeightsRequest(
            selection=weights_selection(model_ids, family=family, task_type=task_type, presets=presets)
        )
        stream = self._c._zoo.ExportWeights(request, timeout=timeout, metadata=self._c._metadata)
        entries: list[dict] = []
        try:
            with tarfile.open(part, "w", format=tarfile.PAX_FORMAT) as tar:
                responses = iter(stream)
                while (response := next(responses, None)) is not None:
                    if response.WhichOneof("part") != "file":
                        raise OSError("the export stream sent bytes before a file header")
                    f = response.file
                    name = f"weights/{Path(f.file_name).name}"
                    info = tarfile.TarInfo(name)
                    info.size = f.weights.size_bytes
                    info.mtime = int(time.time())
                    reader = _StreamedFile(
                        responses, info.size, (lambda n, m=f.model_id: progress(n, m)) if progress else None
                    )
                    tar.addfile(info, reader)
                    if reader.digest.hexdigest() != f.weights.sha256:
                        raise OSError(
                            f"{f.model_id}: the file arrived with sha256 {reader.digest.hexdigest()}, "
                            f"the store says {f.weights.sha256}"
                        )
                    entries.append(
                        {
                            "file": name,
                            "model_id": f.model_id,
                            "for_model_ids": list(f.for_model_ids),
                            "library": f.library,
                            "architecture": f.architecture,
                            "sha256": f.weights.sha256,
                            "size_bytes": f.weights.size_bytes,
                            "source": f.source,
                            "scope": short_name(modelzoo_pb2.WeightsScope.Name(f.scope), "WEIGHTS_SCOPE_"),
                        }
                    )
                manifest = {
                    "schema": BUNDLE_SCHEMA,
                    "created": datetime.now(UTC).isoformat(timespec="seconds"),
                    "gateway": self._c.address,
                    "weights": entries,
                }
                raw = json.dumps(manifest, indent=2).encode()
                info = tarfile.TarInfo(BUNDLE_MANIFEST)
                info.size = len(raw)
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(raw))
        except grpc.RpcError as exc:
            part.unlink(missing_ok=True)
            raise error_from_rpc(exc) from None
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        finally:
            stream.cancel()
        part.replace(out)
        return manifest

    @staticmethod
    def read_manifest(tar: tarfile.TarFile, path: Path) -> list[tuple[dict, tarfile.TarInfo]]:
        """The manifest's entries with their members, every file hashed and checked against it."""

        def bad(why: str) -> InvalidArgumentError:
            return InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, f"{path}: {why}", violations={"path": why})

        try:
            raw = tar.extractfile(BUNDLE_MANIFEST)
            manifest = json.loads(raw.read()) if raw is not None else None
        except KeyError:
            raise bad(f"no {BUNDLE_MANIFEST}: not a weights bundle") from None
        except ValueError as exc:
            raise bad(f"{BUNDLE_MANIFEST} is not JSON ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("schema") != BUNDLE_SCHEMA:
            raise bad(f"{BUNDLE_MANIFEST} is not a {BUNDLE_SCHEMA} manifest")
        out = []
        for entry in manifest.get("weights", []):
            try:
                member = tar.getmember(entry["file"])
                sha256, size, model_id = entry["sha256"], int(entry["size_bytes"]), entry["model_id"]
            except (KeyError, TypeError, ValueError):
                raise bad(f"manifest entry {entry!r} names no file of the bundle, or lacks sha256/size/model") from None
            if not member.isfile() or member.size != size:
                raise bad(f"{entry['file']} ({model_id}): {member.size} bytes, the manifest says {size}")
            digest = hashlib.sha256()
            fh = tar.extractfile(member)
            while chunk := fh.read(CHUNK_SIZE):
                digest.update(chunk)
            if digest.hexdigest() != sha256:
                raise bad(f"{entry['file']} ({model_id}) hashes to {digest.hexdigest()}, the manifest says {sha256}")
            out.append((entry, member))
        return out

    def import_bundle(
        self,
        path: str | Path,
        *,
        public: bool = False,
        progress: Callable[[int, int, str], None] | None = None,
        timeout: float | None = None,
    ) -> list[BundleImport]:
        """Load a bundle's weights into the zoo: every file is checked against the manifest first
        (nothing is uploaded from a bad bundle), then uploaded with UploadWeights (the service checks
        sha256, size and the strict key match again). public=True: every project's weights (platform
        operators only); else this project's own. Files the project already trains from are skipped.
        progress(bytes_sent, bytes_in_all, model_id)."""
        path = Path(path)
        if not path.is_file():
            raise InvalidArgumentError(
                grpc.StatusCode.INVALID_ARGUMENT, f"{path}: no such file", violations={"path": "no such file"}
            )
        results: list[BundleImport] = []
        try:
            tar = tarfile.open(path, "r:*")
        except (tarfile.TarError, OSError) as exc:
            raise InvalidArgumentError(
                grpc.StatusCode.INVALID_ARGUMENT, f"{path}: not a tar archive ({exc})", violations={"path": "not a tar"}
            ) from None
        with tar:
            entries = self.read_manifest(tar, path)
            current: dict[str, modelzoo_pb2.Model] = {}
            for entry, _ in entries:  # every model must be in this zoo's catalog before anything is sent
                try:
                    current[entry["model_id"]] = self._c.models.get(entry["model_id"])
                except NotFoundError:
                    raise InvalidArgumentError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"{path}: model {entry['model_id']!r} is not in this zoo's catalog (other library versions?)",
                        violations={"path": f"unknown model {entry['model_id']}"},
                    ) from None
            total = sum(m.size for _, m in entries)
            done = 0
            for entry, member in entries:
                model_id, sha256 = entry["model_id"], entry["sha256"]
                have_model = current[model_id]
                have = have_model.weights if have_model.weights.key else have_model.backbone_weights
                scope_ok = not public or have_model.weights_scope == modelzoo_pb2.WEIGHTS_SCOPE_PUBLIC
                if have.sha256 == sha256 and scope_ok:
                    results.append(BundleImport(model_id, sha256, "already in store", have_model))
                else:
                    model = self._c.models.upload_weights(
                        tar.extractfile(member),
                        model_id,
                        public=public,
                        sha256=sha256,
                        size_bytes=member.size,
                        origin=f"bundle {path.name}: {entry.get('source', '')}",
                        progress=(lambda n, _t, b=done, m=model_id: progress(b + n, total, m)) if progress else None,
                        timeout=timeout,
                    )
                    results.append(BundleImport(model_id, sha256, "stored", model))
                done += member.size
                if progress:
                    progress(done, total, model_id)
        return results


class Training:
    def __init__(self, client: Client) -> None:
        self._c = client

    @_rpc("TrainingService/CreateTrainingTask")
    def create(
        self,
        name: str,
        task_type: Any,
        dataset_id: str,
        model_id: str = "",
        *,
        auto: bool = False,
        suggestion: recommend_pb2.Suggestion | None = None,
        preset: str = "",
        data_type: Any = None,
        preference: Any = None,
        description: str = "",
        dataset_version_id: str = "",
        transfer_strategy: Any = None,
        hyperparameters: common_pb2.Hyperparameters | dict | None = None,
        request_id: str | None = None,
        search: training_pb2.HyperparameterSearch | None = None,
        resources: common_pb2.ComputeResources | dict | None = None,
        from_scratch: bool = False,
        validate_only: bool = False,
        timeout: float | None = None,
    ) -> training_pb2.TrainingTask:
        """Validate and queue a training task. The model: model_id (a catalog model, or trained/<task id> to
        retrain one of the project's trained models), suggestion (one of recommend()'s, used whole: its
        model, transfer strategy and hyperparameters, recorded on the task; transfer_strategy and
        hyperparameters given here override them), preset (a specialized preset id), or auto=True to let
        the platform pick (its top suggestion for data_type and preference). data_type says what the
        images show (the recipe and later recommendations of the trained model take it into account).
        validate_only=True resolves the task without creating it: every hyperparameter and the transfer
        strategy it would train with (nothing stored, queued or fetched).
        Weights a configured source provides are fetched first (the task's log says so; allow for the
        download in `timeout`); a model without weights is refused unless from_scratch=True (or
        transfer_strategy="from_scratch"): training from scratch is never a silent fallback.
        With `search` (see hyperparameter_search()) it runs a hyperparameter search instead: its
        trials are separate jobs and the best one's model is the task's result (trials(): ListTrials).
        resources, e.g. {"processes_per_node": 4, "nodes": 2}: data-parallel training over that many
        processes; the hyperparameters' batch_size is then the global batch (deploy/README.md)."""
        if isinstance(hyperparameters, dict):
            hyperparameters = make_hyperparameters(**hyperparameters)
        if isinstance(resources, dict):
            resources = common_pb2.ComputeResources(**resources)
        strategy = _enum(common_pb2.TransferStrategy, "TRANSFER_STRATEGY_", transfer_strategy, "transfer_strategy")
        if from_scratch:
            if strategy not in (common_pb2.TRANSFER_STRATEGY_UNSPECIFIED, common_pb2.TRANSFER_STRATEGY_FROM_SCRATCH):
                raise InvalidArgumentError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "from_scratch contradicts transfer_strategy "
                    f"{short_name(common_pb2.TransferStrategy.Name(strategy), 'TRANSFER_STRATEGY_')}",
                    violations={"transfer_strategy": "must be from_scratch (or unset) with from_scratch=True"},
                )
            strategy = common_pb2.TRANSFER_STRATEGY_FROM_SCRATCH
        request = training_service_pb2.CreateTrainingTaskRequest(
            name=name,
            description=description,
            task_type=task_type_fn(task_type),
            dataset_id=dataset_id,
            dataset_version_id=dataset_version_id,
            transfer_strategy=strategy,
            request_id=request_id or ("" if validate_only else str(uuid.uuid4())),
            validate_only=validate_only,
        )
        chosen = [k for k, v in (("model_id", model_id), ("suggestion", suggestion), ("preset", preset)) if v]
        if len(chosen) > 1 or (chosen and auto):
            both = ", ".join(chosen + (["auto"] if auto else []))
            raise InvalidArgumentError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"choose the model one way: {both} given",
                violations={"model_selection": f"only one of model_id, suggestion, preset, auto ({both} given)"},
            )
        data_type_value = _enum(common_pb2.DataType, "DATA_TYPE_", data_type, "data_type")
        if hyperparameters is not None:
            request.hyperparameters.CopyFrom(hyperparameters)
        if search is not None:
            request.search.CopyFrom(search)
        if resources is not None:
            request.resources.CopyFrom(resources)
        if suggestion is not None:
            request.suggestion.CopyFrom(suggestion)
            request.data_type = data_type_value
        elif preset:
            request.preset_id = preset
            request.data_type = data_type_value
        elif model_id:
            request.model_id = model_id
            request.data_type = data_type_value
        else:
            request.auto_select.CopyFrom(
                training_pb2.AutoSelect(
                    data_type=data_type_value,
                    preference=_enum(common_pb2.TrainingPreference, "TRAINING_PREFERENCE_", preference, "preference"),
                )
            )
        return self._c.call(self._c._training.CreateTrainingTask, request, timeout=timeout).task

    def plan(self, *args: Any, **kwargs: Any) -> training_pb2.TrainingTask:
        """create(..., validate_only=True): the task as it would be created (the model, transfer strategy
        and every hyperparameter filled in by the recipe), without creating it."""
        return self.create(*args, validate_only=True, **kwargs)

    @_rpc("TrainingService/ContinueTrainingTask")
    def continue_task(self, task_id: str, additional_epochs: int) -> training_pb2.TrainingTask:
        """Train a SUCCEEDED or CANCELLED task for more epochs from its last checkpoint (queued again)."""
        request = training_service_pb2.ContinueTrainingTaskRequest(task_id=task_id, additional_epochs=additional_epochs)
        return self._c.call(self._c._training.ContinueTrainingTask, request).task

    @_rpc("TrainingService/GetTrainingTask")
    def get(self, task_id: str) -> training_pb2.TrainingTask:
        return self._c.call(
            self._c._training.GetTrainingTask, training_service_pb2.GetTrainingTaskRequest(task_id=task_id)
        ).task

    def iter(
        self, state: Any = None, *, model_id: str = "", active_only: bool = False
    ) -> Iterator[training_pb2.TrainingTask]:
        """The project's tasks, newest first, a page at a time (only those in `state`, starting from
        `model_id`, or not ended)."""
        request = training_service_pb2.ListTrainingTasksRequest(
            state=_enum(training_pb2.TaskState, "TASK_STATE_", state, "state"),
            model_id=model_id,
            active_only=active_only,
            page_size=100,
        )
        return _iter_pages(self._c, self._c._training.ListTrainingTasks, request, "tasks")

    @_rpc("TrainingService/ListTrainingTasks")
    def list(
        self, state: Any = None, *, model_id: str = "", active_only: bool = False, limit: int | None = None
    ) -> list[training_pb2.TrainingTask]:
        return list(itertools.islice(self.iter(state, model_id=model_id, active_only=active_only), limit))

    @_rpc("TrainingService/CancelTrainingTask")
    def cancel(self, task_id: str) -> training_pb2.TrainingTask:
        request = training_service_pb2.CancelTrainingTaskRequest(task_id=task_id)
        return self._c.call(self._c._training.CancelTrainingTask, request).task

    @_rpc("TrainingService/DeleteTrainingTask")
    def delete(self, task_id: str) -> training_service_pb2.DeleteTrainingTaskResponse:
        """Delete an ended task with its checkpoints and artifacts (and a search's trials)."""
        request = training_service_pb2.DeleteTrainingTaskRequest(task_id=task_id)
        return self._c.call(self._c._training.DeleteTrainingTask, request)

    @_rpc("TrainingService/ListTrials")
    def trials(self, task_id: str, *, limit: int | None = None) -> list[training_pb2.Trial]:
        """Every trial of a hyperparameter search task, by number (none for a task that is not one)."""
        request = training_service_pb2.ListTrialsRequest(task_id=task_id, page_size=500)
        return _pages(self._c, self._c._training.ListTrials, request, "trials", limit)

    @_rpc("TrainingService/GetHyperparameterSchema")
    def hyperparameter_schema(
        self, model_id: str = "", task_type: Any = None
    ) -> training_service_pb2.GetHyperparameterSchemaResponse:
        """Every hyperparameter's type, range, default (for the model) and default search range."""
        request = training_service_pb2.GetHyperparameterSchemaRequest(
            model_id=model_id, task_type=task_type_fn(task_type)
        )
        return self._c.call(self._c._training.GetHyperparameterSchema, request)

    @_rpc("TrainingService/WatchTrainingTask")
    def watch(
        self, task_id: str, *, from_start: bool = True, after_sequence: int = 0
    ) -> Iterator[training_pb2.TaskEvent]:
        """Events of a task until it ends (status, progress, epoch metrics, logs); on UNAVAILABLE (the gateway,
        the service or its message bus away) it resumes after the last event seen, `client.retries` times
        in a row. `after_sequence` resumes an earlier watch: the last TaskEvent.sequence it received (an
        error's `metadata["after_sequence"]`)."""
        seen = after_sequence
        attempt = 0
        while True:
            stream = self._c._training.WatchTrainingTask(
                training_service_pb2.WatchTrainingTaskRequest(
                    task_id=task_id, from_start=from_start, after_sequence=seen
                ),
                metadata=self._c._metadata,
            )
            try:
                for response in stream:
                    event = response.event
                    if event.sequence and event.sequence <= seen:
                        continue
                    seen = max(seen, event.sequence)
                    attempt = 0
                    yield event
                    # an ended state in the replayed history of a continued task is not the end: ask
                    if event.HasField("task") and event.task.state in TERMINAL_STATES:
                        if self.get(task_id).state in TERMINAL_STATES:
                            stream.cancel()
                            return
                return
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE and attempt < self._c.retries:
                    self._c._sleep_before_retry(attempt, exc)
                    attempt += 1
                    continue
                error = error_from_rpc(exc)
                if seen:
                    error.metadata.setdefault("after_sequence", str(seen))
                    error.metadata.setdefault("task_id", task_id)
                raise error from None
            finally:
                stream.cancel()

    @_rpc("TrainingService/GetTaskArtifacts")
    def artifacts(self, task_id: str, expires_in_seconds: int = 0) -> list[training_service_pb2.ArtifactLink]:
        """The task's artifacts with download links (on the configured public object-store endpoint)."""
        request = training_service_pb2.GetTaskArtifactsRequest(task_id=task_id, expires_in_seconds=expires_in_seconds)
        return list(self._c.call(self._c._training.GetTaskArtifacts, request).links)

    @_rpc("TrainingService/ReadTaskArtifact")
    def download(
        self,
        task_id: str,
        out_dir: str | Path,
        names: list[str] | None = None,
        *,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> list[Path]:
        """Download the task's artifacts (all, or those named) through the gateway into out_dir, each checked
        against its sha256; progress(name, bytes_done, bytes_total). Returns the files written."""
        import hashlib

        task = self.get(task_id)
        wanted = names or [a.name for a in task.artifacts]
        known = {a.name for a in task.artifacts}
        missing = [n for n in wanted if n not in known]
        if missing:
            raise NotFoundError(
                grpc.StatusCode.NOT_FOUND,
                f"task {task_id} has no artifact(s) {', '.join(missing)}; it has {', '.join(sorted(known)) or 'none'}",
            )
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in wanted:
            target = out / name
            partial = target.with_name(target.name + ".part")
            digest, size, expected = hashlib.sha256(), 0, ""
            request = training_service_pb2.ReadTaskArtifactRequest(task_id=task_id, name=name)
            try:
                with partial.open("wb") as fh:
                    for response in self._c._training.ReadTaskArtifact(request, metadata=self._c._metadata):
                        fh.write(response.chunk)
                        digest.update(response.chunk)
                        size += len(response.chunk)
                        expected = response.sha256
                        if progress:
                            progress(name, size, response.size_bytes)
            except grpc.RpcError as exc:
                partial.unlink(missing_ok=True)
                raise error_from_rpc(exc) from None
            if expected and digest.hexdigest() != expected:
                partial.unlink(missing_ok=True)
                raise TrainyardError(
                    grpc.StatusCode.DATA_LOSS, f"{name}: the download does not match its sha256 {expected}"
                )
            partial.replace(target)
            written.append(target)
        return written

    def wait(self, task_id: str, timeout: float | None = None) -> training_pb2.TrainingTask:
        """Block until the task ends; returns it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for _event in self.watch(task_id):
            if deadline is not None and time.monotonic() > deadline:
                break
        return self.get(task_id)


class Evaluations:
    """Evaluations of models on dataset versions: their summaries, per-case results and label errors."""

    def __init__(self, client: Client) -> None:
        self._c = client

    @_rpc("TrainingService/CreateEvaluation")
    def create(
        self,
        model_id: str,
        dataset_id: str,
        *,
        dataset_version_id: str = "",
        splits: list[Any] | None = None,
        batch_size: int = 0,
        request_id: str | None = None,
    ) -> evaluation_pb2.Evaluation:
        """Queue an evaluation of a model of the project on a dataset (its latest version unless named);
        splits e.g. ["test"] (default: test, or val when there is none)."""
        request = training_service_pb2.CreateEvaluationRequest(
            model_id=model_id,
            dataset_id=dataset_id,
            dataset_version_id=dataset_version_id,
            splits=[split(s) for s in splits or []],
            batch_size=batch_size,
            request_id=request_id or str(uuid.uuid4()),
        )
        return self._c.call(self._c._training.CreateEvaluation, request).evaluation

    @_rpc("TrainingService/GetEvaluation")
    def get(self, evaluation_id: str) -> evaluation_pb2.Evaluation:
        request = training_service_pb2.GetEvaluationRequest(evaluation_id=evaluation_id)
        return self._c.call(self._c._training.GetEvaluation, request).evaluation

    def of_task(self, task_id: str) -> evaluation_pb2.Evaluation:
        """The automatic evaluation of a training task (made when it succeeded)."""
        task = self._c.training.get(task_id)
        if not task.evaluation_id:
            raise FailedPreconditionError(
                grpc.StatusCode.FAILED_PRECONDITION, f"training task {task_id} has no evaluation (not succeeded?)"
            )
        return self.get(task.evaluation_id)

    @_rpc("TrainingService/ListEvaluations")
    def list(self, model_id: str = "", *, limit: int | None = None) -> list[evaluation_pb2.Evaluation]:
        request = training_service_pb2.ListEvaluationsRequest(model_id=model_id, page_size=100)
        return _pages(self._c, self._c._training.ListEvaluations, request, "evaluations", limit)

    @_rpc("TrainingService/CancelEvaluation")
    def cancel(self, evaluation_id: str) -> evaluation_pb2.Evaluation:
        request = training_service_pb2.CancelEvaluationRequest(evaluation_id=evaluation_id)
        return self._c.call(self._c._training.CancelEvaluation, request).evaluation

    @_rpc("TrainingService/WatchEvaluation")
    def watch(self, evaluation_id: str) -> Iterator[training_service_pb2.WatchEvaluationResponse]:
        """Changes (the evaluation, log lines) until it ends."""
        request = training_service_pb2.WatchEvaluationRequest(evaluation_id=evaluation_id)
        try:
            yield from self._c._training.WatchEvaluation(request, metadata=self._c._metadata)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    def wait(self, evaluation_id: str) -> evaluation_pb2.Evaluation:
        for _ in self.watch(evaluation_id):
            pass
        return self.get(evaluation_id)

    @_rpc("TrainingService/ListEvaluationCases")
    def cases(
        self,
        evaluation_id: str,
        *,
        class_name: str = "",
        kind: Any = None,
        predicted_class: str = "",
        previews: bool = False,
        thumbnail_size: int = 0,
        limit: int | None = 50,
    ) -> list[evaluation_pb2.CaseResult]:
        """Per-case results, worst first; kind: correct, misclassified, false_positive, missed_object, low_iou."""
        request = training_service_pb2.ListEvaluationCasesRequest(
            evaluation_id=evaluation_id,
            class_name=class_name,
            kind=_enum(evaluation_pb2.CaseErrorKind, "CASE_ERROR_KIND_", kind, "kind"),
            predicted_class=predicted_class,
            include_previews=previews,
            thumbnail_size=thumbnail_size,
            page_size=min(limit or 200, 200),
        )
        return _pages(self._c, self._c._training.ListEvaluationCases, request, "cases", limit)

    @_rpc("TrainingService/ListLabelErrors")
    def label_errors(
        self, evaluation_id: str, *, previews: bool = False, thumbnail_size: int = 0, limit: int | None = 50
    ) -> list[evaluation_pb2.LabelError]:
        """Suspected label errors, most suspicious first."""
        request = training_service_pb2.ListLabelErrorsRequest(
            evaluation_id=evaluation_id,
            include_previews=previews,
            thumbnail_size=thumbnail_size,
            page_size=min(limit or 200, 200),
        )
        return _pages(self._c, self._c._training.ListLabelErrors, request, "label_errors", limit)


class Keys:
    def __init__(self, client: Client) -> None:
        self._c = client

    @_rpc("AuthService/CreateApiKey")
    def create(
        self,
        name: str,
        role: Any = "viewer",
        *,
        member: str = "",
        expire_seconds: int = 0,
        request_id: str | None = None,
        platform_operator: bool = False,
    ) -> auth_service_pb2.CreateApiKeyResponse:
        """A new key of this project; the response's `.token` is shown only once. `platform_operator`
        (only an operator may ask) lets the key change the public weights every project shares."""
        request = auth_service_pb2.CreateApiKeyRequest(
            name=name,
            role=_enum(auth_pb2.Role, "ROLE_", role, "role"),
            member=member,
            platform_operator=platform_operator,
            request_id=request_id or str(uuid.uuid4()),
        )
        if expire_seconds:
            request.expire_time.FromSeconds(int(time.time()) + expire_seconds)
        return self._c.call(self._c._auth.CreateApiKey, request)

    @_rpc("AuthService/ListApiKeys")
    def list(self) -> list[auth_pb2.ApiKey]:
        request = auth_service_pb2.ListApiKeysRequest(page_size=500)
        return _pages(self._c, self._c._auth.ListApiKeys, request, "keys", None)

    @_rpc("AuthService/RevokeApiKey")
    def revoke(self, key_id: str) -> auth_pb2.ApiKey:
        return self._c.call(self._c._auth.RevokeApiKey, auth_service_pb2.RevokeApiKeyRequest(key_id=key_id)).key


class Projects:
    def __init__(self, client: Client) -> None:
        self._c = client

    @_rpc("AuthService/CreateProject")
    def create(self, project_id: str, display_name: str = "") -> auth_service_pb2.CreateProjectResponse:
        """A new project and its first admin key (`.admin_token`, shown only once)."""
        request = auth_service_pb2.CreateProjectRequest(project_id=project_id, display_name=display_name)
        return self._c.call(self._c._auth.CreateProject, request, retry=False)

    @_rpc("AuthService/ListProjects")
    def list(self) -> list[auth_pb2.Project]:
        request = auth_service_pb2.ListProjectsRequest(page_size=500)
        return _pages(self._c, self._c._auth.ListProjects, request, "projects", None)

    @_rpc("AuthService/AddProjectMember")
    def add_member(self, member: str, role: Any) -> auth_pb2.ProjectMember:
        request = auth_service_pb2.AddProjectMemberRequest(
            member=member, role=_enum(auth_pb2.Role, "ROLE_", role, "role")
        )
        return self._c.call(self._c._auth.AddProjectMember, request).member

    @_rpc("AuthService/ListProjectMembers")
    def members(self) -> list[auth_pb2.ProjectMember]:
        request = auth_service_pb2.ListProjectMembersRequest(page_size=500)
        return _pages(self._c, self._c._auth.ListProjectMembers, request, "members", None)

    @_rpc("AuthService/RemoveProjectMember")
    def remove_member(self, member: str) -> list[str]:
        request = auth_service_pb2.RemoveProjectMemberRequest(member=member)
        return list(self._c.call(self._c._auth.RemoveProjectMember, request).revoked_key_ids)


def local_stack_credentials(home: str | Path | None = None) -> tuple[str, str]:
    """(gateway address, admin token) of the local stack in `home` ($TRAINYARD_HOME, ./.trainyard); '' when absent."""
    folder = Path(home or os.environ.get("TRAINYARD_HOME") or ".trainyard")
    address = token = ""
    try:
        state = json.loads((folder / "stack.json").read_text())
        address = str(state.get("gateway") or "")
    except (OSError, ValueError):
        pass
    try:
        token = (folder / "admin-token").read_text().strip()
    except OSError:
        pass
    return address, token
