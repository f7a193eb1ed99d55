"""Offline checks of deploy/compose, deploy/k8s and deploy/docker (no Docker engine or cluster needed).

The Kubernetes manifests are validated against the Kubernetes JSON schemas shipped inside the
`kubernetes-validate` package (offline); those tests skip when it is not installed. The structure
checks (security, probes, exposure, scaling, settings names) and the compose file checks always run.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import pytest
import yaml

from kernel import messaging

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose" / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / "compose" / "env.example"
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
GRPC_COMPONENTS = ("dataset", "modelzoo", "recommend", "training", "gateway")
K8S_VERSIONS = ("1.30.0", "1.37.0")  # oldest supported and newest schemas shipped


# ---------------------------------------------------------------- helpers


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def k8s_docs() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for _, d in k8s_docs() if d["kind"] == kind}


def pod_spec(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]


def known_env() -> set[str]:
    """Every environment variable a trainyard process reads (the settings classes' fields)."""
    from gateway.settings import GatewaySettings
    from kernel.settings import Settings
    from services.dataset.settings import DatasetSettings
    from services.modelzoo.settings import ModelZooSettings
    from trainer.settings import TrainerSettings

    names = {"DATABASE_URL"}
    for cls in (Settings, GatewaySettings, DatasetSettings, ModelZooSettings, TrainerSettings):
        names |= {f"TRAINYARD_{field.upper()}" for field in cls.model_fields}
    return names


def module_exists(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# ---------------------------------------------------------------- compose


def test_compose_has_every_part_and_publishes_only_the_gateway() -> None:
    services = compose()["services"]
    expected = {"nats-1", "nats-2", "nats-3", "postgres", "migrate", "trainer", *GRPC_COMPONENTS}
    assert expected <= set(services)
    assert any(name.startswith("minio") for name in services)
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"gateway"}
    assert compose()["networks"]["backend"].get("internal") is True
    assert set(services["gateway"]["networks"]) == {"backend", "frontend"}
    for name, svc in services.items():
        if name != "gateway":
            assert "frontend" not in (svc.get("networks") or []), name


def test_compose_nats_is_a_three_node_jetstream_cluster_with_replicated_streams() -> None:
    services = compose()["services"]
    nodes = [services[f"nats-{i}"] for i in (1, 2, 3)]
    stores = set()
    for i, node in enumerate(nodes, start=1):
        args = node["command"]
        assert "-js" in args
        assert args[args.index("--cluster_name") + 1] == "trainyard"
        routes = set(args[args.index("--routes") + 1].split(","))
        assert routes == {f"nats://nats-{n}:6222" for n in (1, 2, 3)}
        assert args[args.index("-n") + 1] == f"nats-{i}"
        stores |= {v for v in node["volumes"] if v.endswith(":/data")}
        assert "healthcheck" in node
    assert len(stores) == 3  # each node its own store
    env = services["training"]["environment"]
    assert env["TRAINYARD_NATS_REPLICAS"] == "3"
    assert {re.sub(r"//service:[^@]+@", "//", u) for u in env["TRAINYARD_NATS_URL"].split(",")} == {
        f"nats://nats-{n}:4222" for n in (1, 2, 3)
    }


def test_compose_services_health_volumes_gpu_and_settings() -> None:
    doc = compose()
    services = doc["services"]
    known = known_env()
    for name in GRPC_COMPONENTS:
        svc = services[name]
        command = svc["command"]
        assert command[:2] == ["python", "-m"] and module_exists(command[2]), name
        assert "python" in svc["healthcheck"]["test"] and not svc["healthcheck"].get("disable"), name
        assert svc.get("read_only") is True and svc.get("cap_drop") == ["ALL"], name
        if name != "recommend":  # the one without a database
            assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    for name, svc in services.items():
        for key in (svc.get("environment") or {}) if "build" in svc else ():  # trainyard's own image
            assert key in known, f"{name}: {key} is not a setting any trainyard process reads"
        for dep in svc.get("depends_on") or {}:
            assert dep in services, f"{name} depends on unknown {dep}"
        for volume in svc.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if source.startswith("./"):  # a file of deploy/compose, mounted read-only
                assert (COMPOSE.parent / source).is_file() and volume.endswith(":ro"), f"{name}: {volume}"
                continue
            assert source in doc["volumes"], f"{name}: volume {source} is not declared"
    trainer = services["trainer"]
    assert trainer["command"] == ["python", "-m", "trainer"]
    devices = trainer["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert trainer["build"]["args"]["VARIANT"] == "cuda"
    assert services["dataset"]["build"]["args"]["VARIANT"] == "cpu"


def test_compose_variables_are_all_in_the_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    example = {line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line}
    image_overrides = {"TRAINYARD_IMAGE", "TRAINYARD_TRAINER_IMAGE"}  # optional, defaulted in the file
    assert used - image_overrides <= example, used - example


# ---------------------------------------------------------------- the commands the deployments run


def _health_command() -> list[str]:
    return compose()["x-app"]["healthcheck"]["test"][1:]


def test_the_grpc_health_check_command_passes_and_fails_against_a_real_server() -> None:
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        command = [part.replace("127.0.0.1:50051", f"127.0.0.1:{port}") for part in _health_command()]
        command[0] = sys.executable
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        assert subprocess.run(command, capture_output=True, timeout=60).returncode == 0
        servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert subprocess.run(command, capture_output=True, timeout=60).returncode == 1
    finally:
        server.stop(0)
    # The Dockerfile's HEALTHCHECK is the same command.
    assert _health_command()[-1] in DOCKERFILE.read_text()


def test_the_migrations_command_migrates_every_service(tmp_path: Path) -> None:
    import sqlalchemy as sa

    command = compose()["services"]["migrate"]["command"]
    job = by_kind("Job")["migrate"]
    assert pod_spec(job)["containers"][0]["command"] == command  # k8s Job and compose run the same
    db = tmp_path / "migrate.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "TRAINYARD_HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, *command[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    tables = set(sa.inspect(sa.create_engine(f"sqlite:///{db}")).get_table_names())
    for name in ("dataset", "modelzoo", "training", "gateway"):
        assert f"alembic_version_{name}" in tables
    assert any(t.startswith("dataset_") for t in tables) and any(t.startswith("training_") for t in tables)


def test_dockerfile_builds_cpu_and_cuda_variants_and_runs_unprivileged() -> None:
    text = DOCKERFILE.read_text()
    assert "ARG VARIANT=cpu" in text
    assert re.search(r"^\s*cpu\)", text, re.M) and re.search(r"^\s*cuda\)", text, re.M)
    assert "torch==$TORCH_VERSION" in text
    assert re.search(r"^USER 10001", text, re.M)
    assert "catalog_builder" in text and "TRAINYARD_MODELZOO_CATALOG=/opt/trainyard/catalog.json" in text


# ---------------------------------------------------------------- Kubernetes: structure


def test_kustomization_lists_every_manifest() -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kust["resources"]) == files
    assert {image["name"] for image in kust["images"]} == {"trainyard", "trainyard-cuda"}


def test_k8s_workloads_are_unprivileged_bounded_and_probed() -> None:
    workloads = {**by_kind("Deployment"), **by_kind("StatefulSet"), **by_kind("Job")}
    assert set(GRPC_COMPONENTS) | {"trainer", "nats", "minio", "postgres", "migrate"} <= set(workloads)
    for name, doc in workloads.items():
        spec = pod_spec(doc)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec.get("automountServiceAccountToken") is False, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert c["resources"]["requests"] and c["resources"]["limits"], name
    for name in GRPC_COMPONENTS:
        c = pod_spec(workloads[name])["containers"][0]
        assert c["command"][:2] == ["python", "-m"] and module_exists(c["command"][2]), name
        for probe in ("readinessProbe", "livenessProbe"):
            assert c[probe]["grpc"]["port"] == 50051, (name, probe)


def test_k8s_exposes_only_the_gateway() -> None:
    services = by_kind("Service")
    exposed = {n for n, s in services.items() if s["spec"].get("type", "ClusterIP") in ("LoadBalancer", "NodePort")}
    assert exposed == {"gateway"}
    policies = by_kind("NetworkPolicy")
    deny = policies["default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and deny["ingress"] == []
    open_to_all = set()
    for name, policy in policies.items():
        for rule in policy["spec"].get("ingress", []):
            if not rule.get("from"):
                open_to_all.add(policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
            else:
                for peer in rule["from"]:
                    assert "ipBlock" not in peer, name
    assert open_to_all == {"gateway"}
    selected = {
        p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") for p in policies.values()
    }
    assert set(GRPC_COMPONENTS) | {"nats", "minio", "postgres"} <= selected


def test_k8s_every_replicated_workload_has_a_disruption_budget() -> None:
    budgets = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for d in by_kind("PodDisruptionBudget").values()
    }
    replicated = set(by_kind("Deployment")) | {
        n for n, s in by_kind("StatefulSet").items() if s["spec"]["replicas"] > 1
    }
    assert replicated <= budgets


def test_k8s_trainer_asks_for_a_gpu_and_scales_on_jetstream_lag() -> None:
    trainer = by_kind("Deployment")["trainer"]
    c = pod_spec(trainer)["containers"][0]
    assert c["command"] == ["python", "-m", "trainer"] and c["image"] == "trainyard-cuda"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    scaled = by_kind("ScaledObject")["trainer"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "trainer"
    triggers = scaled["spec"]["triggers"]
    for trigger in triggers:
        assert trigger["type"] == "nats-jetstream"
        assert trigger["metadata"]["stream"] == messaging.JOBS_STREAM
        assert int(trigger["metadata"]["lagThreshold"]) >= 1
    # jobs waiting, and member messages of multi-node jobs waiting for trainers to join
    assert [t["metadata"]["consumer"] for t in triggers] == [
        messaging.trainers_durable("classification"),
        messaging.members_durable("classification"),
    ]
    # node 0 of a multi-node job advertises its pod IP; trainers reach each other (c10d store, gloo/NCCL)
    env = {e["name"]: e for e in c["env"]}
    assert env["TRAINYARD_TRAINER_ADVERTISE_ADDRESS"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    peers = by_kind("NetworkPolicy")["trainer-ingress"]["spec"]
    assert peers["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "trainer"}
    assert peers["ingress"] == [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "trainer"}}}]}]
    assert scaled["spec"]["maxReplicaCount"] >= scaled["spec"]["minReplicaCount"]
    # KEDA must reach the NATS monitoring port through the network policies.
    nats_rules = by_kind("NetworkPolicy")["nats-ingress"]["spec"]["ingress"]
    assert any(
        any(p.get("namespaceSelector") for p in r.get("from", [])) and {"protocol": "TCP", "port": 8222} in r["ports"]
        for r in nats_rules
    )


def test_k8s_settings_and_secrets_line_up() -> None:
    config = by_kind("ConfigMap")["trainyard-config"]["data"]
    known = known_env()
    assert set(config) <= known, set(config) - known
    assert config["TRAINYARD_NATS_REPLICAS"] == "3"
    assert "TRAINYARD_NATS_URL" not in config  # it carries a password: secrets.yaml
    nats = by_kind("StatefulSet")["nats"]
    assert nats["spec"]["replicas"] == 3
    secret_keys = set(by_kind("Secret")["trainyard-secrets"]["stringData"])
    for name, doc in {**by_kind("Deployment"), **by_kind("StatefulSet"), **by_kind("Job")}.items():
        for c in pod_spec(doc)["containers"]:
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "trainyard-secrets" and ref["key"] in secret_keys, (name, env["name"])
                if c["image"].startswith("trainyard"):
                    assert env["name"] in known, (name, env["name"])


# ---------------------------------------------------------------- Kubernetes: schemas (offline)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_k8s_manifests_validate_against_the_kubernetes_schemas(version: str) -> None:
    kv = pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate is not installed (pip install kubernetes-validate==1.37.0: ships the schemas, "
        "validates offline)",
    )
    checked = 0
    for filename, doc in k8s_docs():
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: no schema in the package; its structure is checked above
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as exc:
            pytest.fail(
                f"{filename} {doc['kind']}/{doc['metadata']['name']} (k8s {version}): {exc.message} at {list(exc.path)}"
            )
        checked += 1
    assert checked >= 30


# ---------------------------------------------------------------- NATS authentication (issue 18, item 7)


def _trainer_permissions(conf: str) -> tuple[list[str], list[str]]:
    allow = re.search(r"publish: \{allow: \[([^\]]*)\], deny: \[([^\]]*)\]", conf)
    assert allow, "no trainer publish permissions"
    return [v.strip().strip('"') for v in allow.group(1).split(",")], [
        v.strip().strip('"') for v in allow.group(2).split(",")
    ]


def test_nats_takes_no_anonymous_client_in_compose_and_kubernetes() -> None:
    from deploy.local import embedded

    compose_conf = (COMPOSE.parent / "nats-auth.conf").read_text()
    k8s_conf = by_kind("ConfigMap")["nats-config"]["data"]["nats.conf"]
    for conf in (compose_conf, k8s_conf):
        assert "authorization {" in conf and "$TRAINYARD_NATS_SERVICE_PASSWORD" in conf
        allow, deny = _trainer_permissions(conf)
        assert tuple(allow) == embedded.NATS_TRAINER_PUBLISH and tuple(deny) == embedded.NATS_TRAINER_DENY
        assert not any(a.startswith(("trainyard.jobs.>", "trainyard.control")) or a == ">" for a in allow)
    services = compose()["services"]
    for i in (1, 2, 3):
        args = services[f"nats-{i}"]["command"]
        assert args[args.index("-c") + 1] == "/etc/nats/auth.conf"
    assert all("//service:" in u for u in services["training"]["environment"]["TRAINYARD_NATS_URL"].split(","))
    assert all("//trainer:" in u for u in services["trainer"]["environment"]["TRAINYARD_NATS_URL"].split(","))
    secrets_ = by_kind("Secret")["trainyard-secrets"]["stringData"]
    assert all("//service:" in u for u in secrets_["nats-service-url"].split(","))
    assert all("//trainer:" in u for u in secrets_["nats-trainer-url"].split(","))
    wanted = {"training": "nats-service-url", "trainer": "nats-trainer-url"}
    for name, doc in {**by_kind("Deployment"), **by_kind("StatefulSet")}.items():
        for c in pod_spec(doc)["containers"]:
            for env in c.get("env", []):
                if env["name"] == "TRAINYARD_NATS_URL":
                    assert env["valueFrom"]["secretKeyRef"]["key"] == wanted.pop(name), name
    assert not wanted, f"no NATS credentials for {wanted}"
