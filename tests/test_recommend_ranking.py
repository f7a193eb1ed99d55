"""Unit tests of the recommendation ranking (no network)."""

from services.recommend.ranking import DatasetStats, rank
from trainyard.common.v1 import common_pb2
from trainyard.modelzoo.v1 import modelzoo_pb2


def model(mid: str, top1: float, gflops: float, params: float, status: int = 1) -> modelzoo_pb2.Model:
    return modelzoo_pb2.Model(
        id=mid,
        family=mid.split("/")[1].split(".")[0],
        task_types=[common_pb2.TASK_TYPE_CLASSIFICATION],
        num_params=int(params),
        gflops=gflops,
        default_input_size=224,
        pretrain_dataset="imagenet-1k",
        reference_metrics=[common_pb2.Metric(name="top1", value=top1, dataset="imagenet-1k", source="torchvision")],
        weight_status=status,
    )


ZOO = [
    model("tv/mobilenet_v3_small.imagenet1k_v1", 67.7, 0.06, 2.5e6),
    model("tv/mobilenet_v2.imagenet1k_v1", 71.9, 0.30, 3.5e6),
    model("tv/resnet50.imagenet1k_v2", 80.9, 4.1, 25.6e6),
    model("tv/vit_l_16.imagenet1k_v1", 79.7, 61.6, 304e6),
    model("tv/efficientnet_v2_l.imagenet1k_v1", 85.8, 56.1, 118.5e6),
]


def top(preference: int, **kw) -> list[str]:
    return [s.model_id for s in rank(ZOO, preference=preference, data_type=0, stats=DatasetStats(), **kw)]


def test_preferences_pick_different_models():
    assert top(common_pb2.TRAINING_PREFERENCE_FASTEST)[0] == "tv/mobilenet_v3_small.imagenet1k_v1"
    assert top(common_pb2.TRAINING_PREFERENCE_MOST_ACCURATE)[0] == "tv/efficientnet_v2_l.imagenet1k_v1"
    assert top(common_pb2.TRAINING_PREFERENCE_SMALLEST)[0] == "tv/mobilenet_v3_small.imagenet1k_v1"
    balanced = top(common_pb2.TRAINING_PREFERENCE_BALANCED)
    assert balanced[0] not in ("tv/vit_l_16.imagenet1k_v1", "tv/efficientnet_v2_l.imagenet1k_v1")


def test_scores_are_sorted_and_explained():
    suggestions = rank(ZOO, preference=common_pb2.TRAINING_PREFERENCE_BALANCED, data_type=0, stats=DatasetStats())
    scores = [s.score for s in suggestions]
    assert scores == sorted(scores, reverse=True)
    for s in suggestions:
        assert "balanced" in s.rationale and s.factors
        assert s.hyperparameters.epochs > 0 and s.hyperparameters.image_size > 0
        assert s.expected_seconds_per_epoch > 0
        assert 0 <= s.expected_quality_low <= s.expected_quality_high <= 1


def test_missing_weights_are_penalised():
    zoo = [model("tv/a.x", 80.0, 1.0, 5e6, status=3), model("tv/b.x", 78.0, 1.0, 5e6, status=1)]
    ranked = rank(zoo, preference=common_pb2.TRAINING_PREFERENCE_MOST_ACCURATE, data_type=0, stats=DatasetStats())
    assert ranked[0].model_id == "tv/b.x"
    assert any("from scratch" in f for f in ranked[1].factors)


def test_constraints_filter_candidates():
    ids = top(common_pb2.TRAINING_PREFERENCE_MOST_ACCURATE, max_params=10_000_000)
    assert ids and all(i.startswith("tv/mobilenet") for i in ids)
    stats = DatasetStats(train_cases=10_000, num_classes=10)
    fast = rank(ZOO, preference=2, data_type=0, stats=stats, max_training_seconds=600)
    assert fast and all(s.expected_seconds_per_epoch * s.hyperparameters.epochs <= 600 for s in fast)


def test_small_dataset_changes_strategy():
    s = rank(ZOO, preference=2, data_type=0, stats=DatasetStats(train_cases=40, num_classes=2))[0]
    assert s.transfer_strategy == common_pb2.TRANSFER_STRATEGY_LINEAR_PROBE
    assert s.hyperparameters.batch_size <= 10
