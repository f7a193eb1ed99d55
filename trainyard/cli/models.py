"""trainyard models list | families | show | pull | import | delete, weights bundle | import, presets list | show."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from trainyard.cli.common import _client, _json, _out, _table, _types, console, err

MODEL_COLUMNS = ["id", "family", "params (M)", "GFLOPs", "pretrain", "weights"]


def _model_rows(items) -> list[list]:
    from trainyard.modelzoo.v1 import modelzoo_pb2

    return [
        [
            m.id,
            f"{m.name} ({m.family})" if m.name else m.family,  # a trained model by its task's name
            f"{m.num_params / 1e6:.1f}",
            f"{m.gflops:.2f}",
            m.pretrain_dataset,
            modelzoo_pb2.WeightStatus.Name(m.weight_status).removeprefix("WEIGHT_STATUS_").lower(),
        ]
        for m in items
    ]


def cmd_models_list(args) -> int:
    with _client(args) as ty:
        limit = args.limit or None  # 0: all
        filters = {"family": args.family or "", "query": args.query or "", "origin": args.origin or ""}
        items = ty.models.list(args.task_type, limit=limit, **filters)
        total = ty.models.count(args.task_type, **filters) if limit and len(items) == limit else len(items)
    title = f"models ({len(items)} of {total}{'; --limit 0 lists all' if total > len(items) else ''})"
    return _out(args, items, title, MODEL_COLUMNS, _model_rows(items))


def cmd_models_families(args) -> int:
    with _client(args) as ty:
        items = ty.models.families(args.task_type)
    rows = [[f.name, _types(f.task_types), f.variant_count, f.weights_in_store_count] for f in items]
    return _out(args, items, "model families", ["family", "task types", "variants", "weights in store"], rows)


def cmd_models_show(args) -> int:
    with _client(args) as ty:
        m = ty.models.get(args.id)
    if args.output == "json":
        _json(m)
        return 0
    _table(
        m.id,
        ["field", "value"],
        [
            [k, v]
            for k, v in (
                ("family", m.family),
                ("architecture", f"{m.library}:{m.architecture}"),
                ("task types", _types(m.task_types)),
                ("pretrain", m.pretrain_dataset),
                ("params", m.num_params),
                ("GFLOPs", f"{m.gflops:.2f}"),
                ("input size", m.default_input_size),
                ("license", m.license),
                ("weights", m.weights.sha256 or "not in store"),
            )
        ],
    )
    return 0


def _bytes_bar(*fields: str):
    """A progress display on stderr, only on a terminal (stdout stays the result)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    columns = ["[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn()]
    columns += [TextColumn(f"{{task.fields[{f}]}}") for f in fields]
    return Progress(*columns, console=err, transient=False, disable=not err.is_terminal)


def _pull_rows(results) -> list[list]:
    from trainyard.client import pull_state_name

    rows = []
    for p in results:
        detail = p.error_reason or f"{p.weights.size_bytes / 2**20:.1f} MiB, sha256 {p.weights.sha256[:12]}"
        rows.append([p.model_id, pull_state_name(p.state).replace("_", " "), detail, p.url])
    return rows


def _pull(ty, models, *, family="", task_type=None, presets=()) -> list:
    """PullWeights with a bar per model on stderr; the final states."""
    from trainyard.client import pull_state_name

    with _bytes_bar("state") as bar:
        bars: dict[str, int] = {}

        def progress(p) -> None:
            if p.model_id not in bars:
                bars[p.model_id] = bar.add_task(p.model_id, total=None, state="")
            bar.update(
                bars[p.model_id],
                completed=p.bytes_done or p.weights.size_bytes,
                total=p.bytes_total or p.weights.size_bytes or None,
                state=pull_state_name(p.state).replace("_", " "),
            )

        return ty.models.pull(models, family=family, task_type=task_type, presets=presets, progress=progress)


def cmd_models_pull(args) -> int:
    from trainyard.modelzoo.v1 import modelzoo_pb2

    with _client(args) as ty:
        results = _pull(ty, args.models, family=args.family or "", task_type=args.task_type, presets=args.preset or ())
    _out(args, results, "weights", ["model", "state", "weights", "from"], _pull_rows(results))
    failed = [p for p in results if p.state == modelzoo_pb2.PULL_STATE_FAILED]
    if args.output != "json":  # why, under the table: every URL tried (a column of it wraps unreadably)
        for p in failed:
            err.print(f"{p.model_id}: {p.error_code}: {p.error_message}", markup=False, soft_wrap=True)
    return 1 if failed else 0


def _scope(m) -> str:
    from trainyard.modelzoo.v1 import modelzoo_pb2

    return "public" if m.weights_scope == modelzoo_pb2.WEIGHTS_SCOPE_PUBLIC else "this project's own"


def cmd_models_import(args) -> int:
    path = Path(args.file)
    with _client(args) as ty:
        if args.model is None:
            if path.exists():
                raise ValueError(f"{path}: name the catalog model these weights are for with --model")
            # the older form `models import MODEL_ID`: fetch from the configured sources
            with console.status(f"fetching the weights of {args.file} from the configured sources"):
                m = ty.models.import_weights(args.file)
        else:
            with _bytes_bar() as bar:
                job = bar.add_task(f"uploading {path.name}", total=None)
                m = ty.models.upload_weights(
                    path,
                    args.model,
                    public=args.public,
                    progress=lambda sent, total: bar.update(job, completed=sent, total=total or None),
                )
    w = m.weights if m.weights.key else m.backbone_weights
    if args.output == "json":
        _json(m)
    else:
        console.print(
            f"weights of [bold]{escape(m.id)}[/] in store ({w.size_bytes} bytes, sha256 {w.sha256[:12]}, {_scope(m)})"
        )
    return 0


def cmd_weights_bundle(args) -> int:
    with _client(args) as ty, _bytes_bar() as bar:
        job = bar.add_task(f"writing {Path(args.out).name}", total=None)
        manifest = ty.weights.bundle(
            args.out,
            [*args.models, *(args.more_models or [])],
            family=args.family or "",
            task_type=args.task_type,
            presets=args.preset or (),
            progress=lambda n, model_id: bar.update(job, advance=n, description=model_id),
        )
    rows = [
        [e["model_id"], e["sha256"][:12], f"{e['size_bytes'] / 2**20:.1f} MiB", e["source"]]
        for e in manifest["weights"]
    ]
    _out(args, manifest["weights"], f"{args.out}", ["model", "sha256", "size", "source"], rows)
    return 0


def cmd_weights_import(args) -> int:
    with _client(args) as ty, _bytes_bar() as bar:
        job = bar.add_task(f"importing {Path(args.path).name}", total=None)
        results = ty.weights.import_bundle(
            args.path,
            public=args.public,
            progress=lambda done, total, model_id: bar.update(job, completed=done, total=total, description=model_id),
        )
    rows = [[r.model_id, r.sha256[:12], r.outcome, _scope(r.model)] for r in results]
    _out(args, [r.model for r in results], f"{args.path}", ["model", "sha256", "outcome", "scope"], rows)
    return 0


def _preset_rows(items) -> list[list]:
    from trainyard.client import task_type_name, weight_status_name

    ready = {"in_store": "ready", "importable": "fetched first", "unavailable": "no source"}
    return [[p.id, task_type_name(p.task_type), p.model_id, ready[weight_status_name(p.weight_status)]] for p in items]


def _preset_todo(p) -> str:
    """What to do before a preset trains from pre-trained weights; "" when ready."""
    from trainyard.modelzoo.v1 import modelzoo_pb2

    if p.weight_status == modelzoo_pb2.WEIGHT_STATUS_IN_STORE:
        return ""
    if p.weight_status == modelzoo_pb2.WEIGHT_STATUS_IMPORTABLE:
        return f"trainyard models pull {p.weights_model_id}  (or let the first task fetch them)"
    return f"trainyard models import FILE --model {p.weights_model_id}  (no source has them; or --from-scratch)"


def cmd_presets_list(args) -> int:
    with _client(args) as ty:
        items = ty.models.presets(args.task_type)
    _out(args, items, "presets", ["id", "task type", "model", "weights"], _preset_rows(items))
    if args.output != "json":  # what to pull, under the table (a column of it wraps unreadably at 80 columns)
        for p in items:
            if todo := _preset_todo(p):
                console.print(f"{p.id}: {todo}", markup=False, soft_wrap=True)
    return 0


def cmd_presets_show(args) -> int:
    with _client(args) as ty:
        p = ty.models.preset(args.id)
    if args.output == "json":
        _json(p)
        return 0
    _, task_type, model, weights = _preset_rows([p])[0]
    rows = [["name", p.name], ["task type", task_type], ["model", model], ["weights", weights]]
    if todo := _preset_todo(p):
        rows.append(["to do", todo])
    _table(p.id, ["field", "value"], [*rows, ["description", p.description]])
    return 0


def cmd_models_delete(args) -> int:
    with _client(args) as ty:
        ty.models.delete(args.id)
    console.print(f"deleted trained model {escape(args.id)} (its weights stay with its task until that is deleted)")
    return 0
