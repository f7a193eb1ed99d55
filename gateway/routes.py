"""What the gateway fronts, read from the generated descriptors: service -> backend, call shape, role.

A method's shape (client/server streaming), whether it only reads (idempotency_level =
NO_SIDE_EFFECTS) and whether it is internal to the services ((trainyard.common.v1.access)) come
from the proto, so a new RPC needs no table edit here.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from trainyard.auth.v1 import auth_service_pb2
from trainyard.common.v1 import options_pb2
from trainyard.dataset.v1 import dataset_service_pb2
from trainyard.inference.v1 import inference_service_pb2
from trainyard.modelzoo.v1 import modelzoo_service_pb2
from trainyard.recommend.v1 import recommend_service_pb2
from trainyard.training.v1 import training_service_pb2

# backend name (as in TRAINYARD_<NAME>_ADDRESS) -> its service
BACKEND_SERVICES: dict[str, ServiceDescriptor] = {
    "dataset": dataset_service_pb2.DESCRIPTOR.services_by_name["DatasetService"],
    "modelzoo": modelzoo_service_pb2.DESCRIPTOR.services_by_name["ModelZooService"],
    "recommend": recommend_service_pb2.DESCRIPTOR.services_by_name["RecommendationService"],
    "training": training_service_pb2.DESCRIPTOR.services_by_name["TrainingService"],
    "inference": inference_service_pb2.DESCRIPTOR.services_by_name["InferenceService"],
}
AUTH_SERVICE: ServiceDescriptor = auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"]
# AuthService methods any valid key may call; the rest manage keys and need an admin.
AUTH_OPEN_METHODS = frozenset({"WhoAmI", "CreateToken", "ListProjects"})

FRONTED_SERVICES = tuple(s.full_name for s in (*BACKEND_SERVICES.values(), AUTH_SERVICE))


@dataclass(frozen=True)
class Route:
    path: str  # "/trainyard.dataset.v1.DatasetService/CreateDataset"
    service: str  # "trainyard.dataset.v1.DatasetService"
    name: str  # "CreateDataset"
    backend: str | None  # "dataset"; None for a method the gateway serves itself
    client_streaming: bool
    server_streaming: bool
    read_only: bool
    min_role: str  # viewer | editor | admin
    descriptor: MethodDescriptor
    internal: bool = False  # (trainyard.common.v1.access) = METHOD_ACCESS_INTERNAL: refused to every key


def _read_only(method: MethodDescriptor) -> bool:
    return method.GetOptions().idempotency_level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS


def _internal(method: MethodDescriptor) -> bool:
    return method.GetOptions().Extensions[options_pb2.access] == options_pb2.METHOD_ACCESS_INTERNAL


def _route(service: ServiceDescriptor, method: MethodDescriptor, backend: str | None) -> Route:
    read_only = _read_only(method)
    if backend is None and method.name not in AUTH_OPEN_METHODS:
        min_role = "admin"
    else:
        min_role = "viewer" if read_only else "editor"
    return Route(
        path=f"/{service.full_name}/{method.name}",
        service=service.full_name,
        name=method.name,
        backend=backend,
        client_streaming=method.client_streaming,
        server_streaming=method.server_streaming,
        read_only=read_only,
        min_role=min_role,
        descriptor=method,
        internal=_internal(method),
    )


def build_routes() -> dict[str, Route]:
    routes: dict[str, Route] = {}
    for backend, service in BACKEND_SERVICES.items():
        for method in service.methods:
            routes[f"/{service.full_name}/{method.name}"] = _route(service, method, backend)
    for method in AUTH_SERVICE.methods:
        routes[f"/{AUTH_SERVICE.full_name}/{method.name}"] = _route(AUTH_SERVICE, method, None)
    return routes


ROUTES = build_routes()
