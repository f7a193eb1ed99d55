"""trainyard recommend, and train start | watch | list | show | trials | schema | cancel | delete | download."""

from __future__ import annotations

from rich.markup import escape

from trainyard.cli.common import _client, _json, _out, _table, _when, console, err
from trainyard.cli.models import _pull

SUGGESTION_COLUMNS = ["#", "model", "score", "strategy", "s/epoch"]


def _suggestion_rows(items) -> list[list]:
    from trainyard.common.v1 import common_pb2

    return [
        [
            i + 1,
            s.model_id,
            f"{s.score:.2f}",
            common_pb2.TransferStrategy.Name(s.transfer_strategy).removeprefix("TRANSFER_STRATEGY_").lower(),
            f"{s.expected_seconds_per_epoch:.1f}",
        ]
        for i, s in enumerate(items)
    ]


def cmd_recommend(args) -> int:
    with _client(args) as ty:
        items = ty.recommend(
            args.task_type,
            args.dataset or "",
            data_type=args.data_type,
            preference=args.preference,
            max_suggestions=args.limit,
        )
    _out(args, items, "suggestions", SUGGESTION_COLUMNS, _suggestion_rows(items))
    if getattr(args, "output", "table") != "json":
        # why, under the table: a column of it is unreadable at 80 columns (the whole rationale: --output json)
        for i, s in enumerate(items, start=1):
            console.print(f"{i}. {'; '.join(s.factors[:3])}", markup=False)
    return 0


TASK_COLUMNS = ["id", "name", "type", "state", "model", "dataset", "metrics", "created"]


def _metrics(m) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in sorted(m.items()))


def _task_rows(items) -> list[list]:
    from trainyard.client import state_name, task_type_name

    return [
        [
            t.id,
            t.name,
            task_type_name(t.task_type),
            state_name(t.state),
            t.model_id,
            t.dataset_id,
            _metrics(t.metrics)[:60],
            _when(t.create_time),
        ]
        for t in items
    ]


def cmd_train_start(args) -> int:
    """The General Training flow, asking for what the flags leave out (trainyard/wizard.py)."""
    from trainyard import wizard

    with _client(args) as ty:
        return wizard.run(ty, args)


def _pull_first(ty, model_id: str) -> None:
    """Weights a source provides are fetched before the task is created, with progress here (the
    training service would fetch them too, but silently until the task exists)."""
    from trainyard.modelzoo.v1 import modelzoo_pb2

    model = ty.models.get(model_id)
    if model.weight_status != modelzoo_pb2.WEIGHT_STATUS_IMPORTABLE:
        return  # in the store, or refused by the training service with what to do
    err.print(f"fetching the pre-trained weights of {escape(model.backbone_model_id or model.id)} first")
    for p in _pull(ty, [model_id]):
        if p.state == modelzoo_pb2.PULL_STATE_FAILED:
            err.print(f"[red]could not fetch them[/]: {escape(p.error_message)}")
            err.print("  train from scratch explicitly with [bold]--from-scratch[/], or upload them:")
            err.print(f"  [bold]trainyard models import FILE --model {escape(p.model_id)}[/]")
            raise SystemExit(1)


def _watch(ty, task_id: str, output: str = "table", after: int = 0) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from trainyard.client import state_name
    from trainyard.training.v1 import training_pb2

    final = None
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[metrics]}"),
        console=console,
    ) as bar:
        epochs = bar.add_task("waiting", total=None, metrics="")
        for event in ty.training.watch(task_id, after_sequence=after):
            if output == "json":
                _json(event)
            if event.HasField("task"):
                final = event.task
                bar.update(epochs, description=state_name(event.task.state))
            if event.HasField("progress") and event.progress.total_epochs:
                p = event.progress
                # a search reports trials ended out of its trials (no steps)
                done = p.epoch - 1 + p.step / p.total_steps if p.total_steps else p.epoch
                bar.update(epochs, total=p.total_epochs, completed=done)
            if event.HasField("epoch_metrics"):
                m = event.epoch_metrics
                bar.update(epochs, completed=m.epoch, metrics=_metrics(m.values))
            if event.log and output != "json":
                bar.console.print(f"[dim]{escape(event.log)}[/]")
    task = ty.training.get(task_id)
    color = "green" if task.state == training_pb2.TASK_STATE_SUCCEEDED else "red"
    console.print(f"task {task.id}: [{color}]{state_name(task.state)}[/] {escape(task.failure_reason)}")
    if task.metrics:
        console.print(f"  metrics: {_metrics(task.metrics)}")
    del final
    return 0 if task.state == training_pb2.TASK_STATE_SUCCEEDED else 1


def cmd_train_watch(args) -> int:
    with _client(args) as ty:
        return _watch(ty, args.id, args.output, args.after)


def cmd_train_list(args) -> int:
    with _client(args) as ty:
        items = ty.training.list(args.state)
    return _out(args, items, "training tasks", TASK_COLUMNS, _task_rows(items))


def cmd_train_show(args) -> int:
    with _client(args) as ty:
        t = ty.training.get(args.id)
    if args.output == "json":
        _json(t)
        return 0
    _table(f"task {t.id}", TASK_COLUMNS, _task_rows([t]))
    if t.failure_reason:
        console.print(f"[red]failure:[/] {escape(t.failure_reason)}")
    if t.HasField("search"):
        from trainyard.client import short_name
        from trainyard.training.v1 import training_pb2

        s = t.search
        method = short_name(training_pb2.SearchMethod.Name(s.method), "SEARCH_METHOD_")
        console.print(
            f"search: {method}, {s.max_trials} trials ({s.parallelism} at a time), objective {s.objective_metric}; "
            f"`trainyard train trials {t.id}` lists them"
        )
    if t.search_task_id:
        console.print(f"trial {t.trial_number} of search {t.search_task_id}")
    if t.evaluation_id:
        _print_summary(t.evaluation, f"evaluation {t.evaluation_id}")
    for a in t.artifacts:
        console.print(f"  artifact {escape(a.name)} ({a.object.size_bytes:,} bytes)")
    if t.artifacts:
        console.print(f"  download: [bold]trainyard train download {t.id} --out DIR[/]")
    return 0


def _print_summary(s, title: str) -> None:
    """An EvaluationSummary: headline, per-class metrics, confusion matrix, threshold table."""
    console.print(
        f"[bold]{escape(title)}[/] on the {escape(s.split_note)}: {s.headline_metric} [bold]{s.headline_value:.4f}[/]; "
        f"{s.error_case_count} of {s.case_count} case(s) wrong; {s.label_error_count} suspected label error(s); "
        f"default threshold {s.default_threshold:.2f}"
    )
    console.print("  " + _metrics(s.metrics))
    extra = [c for c in s.classes if c.HasField("ap") or c.HasField("iou")]
    columns = ["class", "support", "precision", "recall", "f1"]
    if any(c.HasField("ap") for c in extra):
        columns.append("AP")
    if any(c.HasField("mask_ap") for c in s.classes):
        columns.append("mask AP")
    if any(c.HasField("iou") for c in extra):
        columns.append("IoU")
    rows = []
    for c in s.classes:
        row = [c.name, c.support, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}"]
        for name, field in (("AP", "ap"), ("mask AP", "mask_ap"), ("IoU", "iou")):
            if name in columns:
                row.append(f"{getattr(c, field):.3f}" if c.HasField(field) else "-")
        rows.append(row)
    _table("per class", columns, rows)
    m = s.confusion_matrix
    if m.column_labels:
        n = len(m.column_labels)
        matrix = [[m.row_labels[r], *m.counts[r * n : (r + 1) * n]] for r in range(len(m.row_labels))]
        _table(f"confusion matrix ({m.unit}; rows: given, columns: predicted)", ["", *m.column_labels], matrix)
    if s.thresholds:
        _table(
            "confidence threshold",
            ["threshold", "precision", "recall", "f1"],
            [
                [f"{r.threshold:.2f}{' *' if abs(r.threshold - s.default_threshold) < 1e-9 else ''}",
                 f"{r.precision:.3f}", f"{r.recall:.3f}", f"{r.f1:.3f}"]
                for r in s.thresholds
            ],
        )  # fmt: skip
    if s.label_error_method:
        console.print(f"  label errors: {escape(s.label_error_method)}")


def cmd_train_download(args) -> int:
    from rich.progress import BarColumn, DownloadColumn, Progress

    with _client(args) as ty:
        with Progress(
            "[progress.description]{task.description}", BarColumn(), DownloadColumn(), console=err,
            transient=True, disable=not err.is_terminal,
        ) as bar:  # fmt: skip
            jobs: dict[str, int] = {}

            def progress(name: str, done: int, total: int) -> None:
                if name not in jobs:
                    jobs[name] = bar.add_task(name, total=total or None)
                bar.update(jobs[name], completed=done)

            files = ty.training.download(args.id, args.out, args.name or None, progress=progress)
    if args.output == "json":
        _json([{"name": f.name, "path": str(f), "size_bytes": f.stat().st_size} for f in files])
    else:
        for f in files:
            console.print(f"  {escape(str(f))} ({f.stat().st_size:,} bytes)")
        console.print(f"[green]downloaded[/] {len(files)} artifact(s) of {escape(args.id)} to {escape(str(args.out))}")
    return 0


TRIAL_COLUMNS = ["#", "state", "parameters", "objective", "epochs", "task", "note"]


def _param_text(p) -> str:
    return f"{p.name}={p.text}" if p.WhichOneof("value") == "text" else f"{p.name}={p.number:.4g}"


def _trial_rows(items) -> list[list]:
    from trainyard.client import trial_state_name

    return [
        [
            f"{t.number}{' *' if t.best else ''}",
            trial_state_name(t.state),
            " ".join(_param_text(p) for p in t.parameters),
            f"{t.objective_value:.4g}" if t.HasField("objective_value") else "-",
            f"{len(t.epoch_metrics)}/{t.hyperparameters.epochs}",
            t.task_id,
            t.reason[:60],
        ]
        for t in items
    ]


def cmd_train_trials(args) -> int:
    with _client(args) as ty:
        task = ty.training.get(args.id)
        items = ty.training.trials(args.id)
    title = f"trials of {task.id}: {task.search.objective_metric} ({'higher' if task.search.direction != 2 else 'lower'} is better; * best)"
    return _out(args, items, title, TRIAL_COLUMNS, _trial_rows(items))


def cmd_train_schema(args) -> int:
    from trainyard.training.v1 import training_pb2

    with _client(args) as ty:
        schema = ty.training.hyperparameter_schema(args.model or "", args.task_type)
    kinds = {training_pb2.HYPERPARAMETER_KIND_INT: "int", training_pb2.HYPERPARAMETER_KIND_FLOAT: "float"}
    rows = []
    for p in schema.parameters:
        valid = (
            ", ".join(p.choices) if p.choices else f"{'(' if p.minimum_exclusive else '['}{p.minimum:g}, {p.maximum:g}]"
        )
        default = p.default_choice if p.choices else f"{p.default_number:g}"
        d = p.default_search
        search = (
            (", ".join(d.choices) if d.choices else f"{d.low:g}..{d.high:g}{' log' if d.log else ''}") if d.name else ""
        )
        rows.append([p.name, kinds.get(p.kind, "choice"), valid, default, "yes" if p.searchable else "no", search])
    title = f"hyperparameters{' of ' + args.model if args.model else ''} (objective default {schema.default_objective_metric})"
    return _out(args, schema, title, ["name", "kind", "valid", "default", "searchable", "default search"], rows)


def cmd_train_cancel(args) -> int:
    from trainyard.client import state_name

    with _client(args) as ty:
        t = ty.training.cancel(args.id)
    console.print(f"task {t.id}: {state_name(t.state)}")
    return 0


def cmd_train_delete(args) -> int:
    with _client(args) as ty:
        done = ty.training.delete(args.id)
    if args.output == "json":
        _json(done)
        return 0
    console.print(
        f"deleted task {escape(args.id)}"
        + (f" and {len(done.deleted_task_ids) - 1} trial(s)" if len(done.deleted_task_ids) > 1 else "")
        + f": {done.deleted_objects} object(s), {done.deleted_bytes / 1024**2:.1f} MiB reclaimed"
    )
    return 0
