"""`make demo`: start the local stack, walk the whole classification flow through the gateway, stop.

    python -m deploy.local.demo [--keep-running] [--epochs N]

Every step goes through the gateway with the stack's admin token, as any client would:
task type -> datasets that fit (with a preview) -> model (browse + recommendation) -> start ->
watch the trainer -> final metrics.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import grpc
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from deploy.local import stack
from kernel import objectstore
from kernel.settings import Settings
from services.dataset.samples import make_classification_archive, upload_chunks
from trainyard.common.v1 import common_pb2
from trainyard.dataset.v1 import dataset_service_pb2 as ds
from trainyard.dataset.v1 import dataset_service_pb2_grpc
from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mz
from trainyard.modelzoo.v1 import modelzoo_service_pb2_grpc
from trainyard.recommend.v1 import recommend_service_pb2 as rc
from trainyard.recommend.v1 import recommend_service_pb2_grpc
from trainyard.training.v1 import training_pb2, training_service_pb2_grpc
from trainyard.training.v1 import training_service_pb2 as tr

console = Console()
CLASSIFICATION = common_pb2.TASK_TYPE_CLASSIFICATION
MODEL = "tv/mobilenet_v2.imagenet1k_v1"


def step(n: int, text: str) -> None:
    console.rule(f"[bold cyan]{n}. {text}")


def run_flow(gateway: str, token: str, home: Path, epochs: int) -> training_pb2.TrainingTask:
    md = (("authorization", f"Bearer {token}"),)
    channel = grpc.insecure_channel(gateway)
    zoo = modelzoo_service_pb2_grpc.ModelZooServiceStub(channel)
    datasets = dataset_service_pb2_grpc.DatasetServiceStub(channel)
    recommend = recommend_service_pb2_grpc.RecommendationServiceStub(channel)
    training = training_service_pb2_grpc.TrainingServiceStub(channel)

    step(1, "Task type")
    console.print(f"task type: [bold]{common_pb2.TaskType.Name(CLASSIFICATION)}[/]")

    step(2, "Dataset: upload a generated ImageFolder archive, list what fits, preview")
    archive = make_classification_archive(classes=("circle", "square", "triangle"), per_class=24, size=64, seed=7)
    name = f"demo-shapes-{time.strftime('%Y%m%d-%H%M%S')}"
    metadata = ds.CreateDatasetMetadata(name=name, description="shapes drawn by the demo", val_fraction=0.25)
    chunk = 32 * 1024
    with Progress(TextColumn("upload"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} KiB")) as bar:
        job = bar.add_task("upload", total=len(archive) / 1024)

        def chunks():
            for message in upload_chunks(metadata, archive, chunk_size=chunk):
                yield message
                if message.HasField("chunk"):
                    bar.advance(job, len(message.chunk) / 1024)

        dataset = datasets.CreateDataset(chunks(), metadata=md).dataset
    version = dataset.latest_version
    console.print(
        f"dataset [bold]{dataset.name}[/] ({dataset.id}): {version.case_count} images, "
        f"train/val/test = {version.split_counts.train}/{version.split_counts.val}/{version.split_counts.test}, "
        f"classes: {', '.join(f'{c.name} ({c.count})' for c in version.classes)}"
    )
    fit = datasets.ListDatasets(ds.ListDatasetsRequest(task_type=CLASSIFICATION, page_size=10), metadata=md)
    console.print(f"datasets that fit classification: {', '.join(d.name for d in fit.datasets)}")
    preview = datasets.PreviewCases(ds.PreviewCasesRequest(dataset_id=dataset.id, count=6, seed=1), metadata=md)
    folder = home / "demo-preview"
    folder.mkdir(parents=True, exist_ok=True)
    for case in preview.cases:
        (folder / f"{case.id}.jpg").write_bytes(case.preview_jpeg)
    labels = ", ".join(f"{c.id}={c.annotations[0].class_name}" for c in preview.cases)
    console.print(f"preview: {len(preview.cases)} cases with labels drawn, saved in {folder} ({labels})")

    step(3, "Model: browse the zoo and ask for a recommendation")
    families = zoo.ListModelFamilies(mz.ListModelFamiliesRequest(task_type=CLASSIFICATION), metadata=md).families
    models = zoo.ListModels(mz.ListModelsRequest(task_type=CLASSIFICATION, page_size=1), metadata=md)
    console.print(f"zoo: {models.total_size} classification models in {len(families)} families")
    suggestions = recommend.Recommend(
        rc.RecommendRequest(
            task_type=CLASSIFICATION,
            dataset_id=dataset.id,
            data_type=common_pb2.DATA_TYPE_NATURAL_PHOTO,
            preference=common_pb2.TRAINING_PREFERENCE_FASTEST,
            max_suggestions=3,
        ),
        metadata=md,
    ).suggestions
    table = Table("rank", "model", "score", "s/epoch (cpu)", "why")
    for i, s in enumerate(suggestions, 1):
        table.add_row(str(i), s.model_id, f"{s.score:.3f}", f"{s.expected_seconds_per_epoch:.1f}", s.rationale)
    console.print(table)
    chosen = zoo.GetModel(mz.GetModelRequest(model_id=MODEL), metadata=md).model
    top1 = next((m.value for m in chosen.reference_metrics if m.name == "top1"), 0.0)
    console.print(
        f"manual choice: [bold]{chosen.id}[/] ({chosen.num_params / 1e6:.1f}M params, ImageNet top-1 {top1:.1f}, "
        f"weights sha256 {chosen.weights.sha256[:12]}... in the store)"
    )

    step(4, "Start: name the task and train")
    task = training.CreateTrainingTask(
        tr.CreateTrainingTaskRequest(
            name="demo: shapes with MobileNetV2",
            description="fine-tune ImageNet MobileNetV2 on generated shapes",
            task_type=CLASSIFICATION,
            dataset_id=dataset.id,
            model_id=MODEL,
            transfer_strategy=common_pb2.TRANSFER_STRATEGY_FINE_TUNE_ALL,
            hyperparameters=common_pb2.Hyperparameters(epochs=epochs, batch_size=16, image_size=64, learning_rate=2e-3),
            request_id=f"demo-{dataset.id}",
        ),
        metadata=md,
    ).task
    console.print(f"task {task.id} is {training_pb2.TaskState.Name(task.state)}")
    final = task
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn()
    ) as bar:
        job = bar.add_task("queued", total=1.0)
        for response in training.WatchTrainingTask(
            tr.WatchTrainingTaskRequest(task_id=task.id, from_start=True), metadata=md
        ):
            event = response.event
            if event.HasField("progress"):
                p = event.progress
                bar.update(
                    job,
                    completed=p.fraction,
                    description=f"epoch {p.epoch}/{p.total_epochs} {p.images_per_second:.0f} img/s",
                )
            elif event.HasField("epoch_metrics"):
                values = dict(event.epoch_metrics.values)
                bar.console.print(
                    f"epoch {event.epoch_metrics.epoch}: "
                    + ", ".join(f"{k}={v:.4f}" for k, v in sorted(values.items()) if not k.startswith("per_class"))
                )
            elif event.HasField("task"):
                final = event.task
                bar.update(
                    job, description=training_pb2.TaskState.Name(final.state).removeprefix("TASK_STATE_").lower()
                )
        bar.update(job, completed=1.0 if final.state == training_pb2.TASK_STATE_SUCCEEDED else None)

    final = training.GetTrainingTask(tr.GetTrainingTaskRequest(task_id=task.id), metadata=md).task
    if final.state != training_pb2.TASK_STATE_SUCCEEDED:
        raise SystemExit(f"training ended {training_pb2.TaskState.Name(final.state)}: {final.failure_reason}")
    step(5, "Results")
    table = Table("metric", "value")
    for key, value in sorted(final.metrics.items()):
        table.add_row(key, f"{value:.4f}")
    console.print(table)
    for artifact in final.artifacts:
        console.print(f"artifact {artifact.name}: s3://{artifact.object.bucket}/{artifact.object.key}")
    return final


def print_confusion(home: Path, final: training_pb2.TrainingTask) -> None:
    ref = next((a.object for a in final.artifacts if a.name == "metrics.json"), None)
    if ref is None:
        return
    env = stack.stack_client_env(home)
    settings = Settings.model_validate({k.removeprefix("TRAINYARD_").lower(): v for k, v in env.items()})
    report = json.loads(objectstore.get_bytes(objectstore.make_client(settings), ref.bucket, ref.key))
    names = report.get("class_names", [])
    matrix = report.get("confusion_matrix", [])
    if names and matrix:
        table = Table("true \\ predicted", *names, title="validation confusion matrix")
        for name, row in zip(names, matrix, strict=False):
            table.add_row(name, *(str(int(v)) for v in row))
        console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep-running", action="store_true", help="leave the stack up afterwards")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    home = stack.stack_home(os.environ.get(stack.HOME_ENV) or ".trainyard/demo")
    console.rule("[bold]trainyard demo")
    console.print(f"stack home: {home}")
    started = time.monotonic()
    state = stack.up(home, say=console.print)
    console.print(
        f"console: [bold]{state['console']}[/] (sign in with the admin token: trainyard auth token; "
        "make demo ARGS=--keep-running keeps it up)"
    )
    try:
        final = run_flow(state["gateway"], stack.admin_token(home), home, args.epochs)
        print_confusion(home, final)
        top1 = final.metrics.get("val_top1", 0.0)
        console.print(f"[bold green]done in {time.monotonic() - started:.0f} s: validation top-1 {top1:.3f}")
        console.print(f"the task in the browser: {state['console']}#/tasks/{final.id}")
    finally:
        if not args.keep_running:
            stack.down(home, say=console.print)


if __name__ == "__main__":
    main()
