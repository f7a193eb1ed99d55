"""The `trainyard` command.

    trainyard stack up [--gateway-port N] [--console-port N] [--no-trainer] [--no-import-weights] [--timeout S]
    trainyard stack down | status | env
    trainyard stack logs [NAME] [-n LINES] [-f]
    trainyard auth token
    trainyard trainer [ARGS...]        # python -m trainer, joined to the local stack when one is up

TRAINYARD_HOME selects the stack's folder (default ./.trainyard).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _say(message: str) -> None:
    console.print(message)


def _home(args: argparse.Namespace) -> Path | None:
    return Path(args.home) if getattr(args, "home", None) else None


def cmd_stack_up(args: argparse.Namespace) -> int:
    from deploy.local import stack

    state = stack.up(
        _home(args),
        gateway_port=args.gateway_port,
        console_port=args.console_port,
        with_trainer=not args.no_trainer,
        import_weights=not args.no_import_weights,
        timeout=args.timeout,
        say=_say,
    )
    home = state["home"]
    console.print()
    console.print(f"[bold green]trainyard is up[/]: gateway at [bold]{state['gateway']}[/]")
    if state.get("console"):
        console.print(
            f"  console (and Connect/JSON over HTTP): [bold]{state['console']}[/]  sign in with the admin token"
        )
    console.print(f"  admin token (project default): [bold]trainyard auth token[/]  (stored in {home}/admin-token)")
    console.print("  send it as metadata  authorization: Bearer <token>")
    console.print(f"  logs in {home}/logs;  [bold]trainyard stack status[/];  [bold]trainyard stack down[/]")
    return 0


def cmd_stack_down(args: argparse.Namespace) -> int:
    from deploy.local import stack

    stopped = stack.down(_home(args), say=_say)
    if stopped:
        console.print(f"stopped {len(stopped)} processes; data kept in {stack.stack_home(_home(args))}")
    return 0


def cmd_stack_status(args: argparse.Namespace) -> int:
    from deploy.local import stack

    rows = stack.status(_home(args))
    home = stack.stack_home(_home(args))
    if not rows:
        console.print(f"no stack in {home}; start one with [bold]trainyard stack up[/]")
        return 3
    table = Table(title=f"trainyard stack ({home})")
    for column in ("component", "pid", "alive", "address", "health"):
        table.add_column(column)
    for row in rows:
        color = "green" if row.health in ("SERVING", "RUNNING") else ("dim" if not row.alive else "red")
        table.add_row(
            row.name,
            str(row.pid or "-"),
            "yes" if row.alive else "no",
            row.address or "-",
            f"[{color}]{row.health}[/]",
        )
    console.print(table)
    if all(r.alive and r.health in ("SERVING", "RUNNING") for r in rows):
        return 0
    return 3 if not any(r.alive for r in rows) else 1


def cmd_stack_logs(args: argparse.Namespace) -> int:
    from deploy.local import stack

    if args.name:
        print(stack.log_tail(args.name, args.lines or 100, _home(args)))
        if args.follow:
            try:
                stack.follow(args.name, _home(args))
            except KeyboardInterrupt:
                return 0
        return 0
    if args.follow:
        raise stack.StackError("--follow needs a component name")
    names = stack.log_names(_home(args))
    if not names:
        console.print(f"no logs in {stack.stack_home(_home(args))}/logs")
        return 0
    for name in names:
        console.rule(name)
        print(stack.log_tail(name, args.lines or 20, _home(args)))
    return 0


def cmd_stack_env(args: argparse.Namespace) -> int:
    from deploy.local import stack

    env = stack.stack_client_env(_home(args))
    if not env:
        raise stack.StackError(f"no stack in {stack.stack_home(_home(args))}; run `trainyard stack up` first")
    for key, value in sorted(env.items()):
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_auth_token(args: argparse.Namespace) -> int:
    from deploy.local import stack

    print(stack.admin_token(_home(args)))
    return 0


def cmd_trainer(args: argparse.Namespace) -> int:
    """Replace this process with `python -m trainer`, wired to the local stack's NATS and S3 when one is up."""
    from deploy.local import stack

    missing = stack.missing_modules(["trainer"])
    if missing:
        raise stack.StackError("cannot start a trainer: " + "; ".join(missing))
    env = dict(os.environ)
    for key, value in stack.stack_client_env(_home(args)).items():
        env.setdefault(key, value)
    env["PYTHONPATH"] = stack._python_path(env)
    argv = [sys.executable, "-m", "trainer", *args.trainer_args]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)
    return 0  # not reached


# ------------------------------------------------------------------------------------------------
# The flow, on the SDK (trainyard.client): datasets, models, recommend, train, keys, projects, audit.
# ------------------------------------------------------------------------------------------------
def _client(args: argparse.Namespace):
    from trainyard.client import Client

    home = getattr(args, "home", None)
    if home is None:
        from deploy.local.stack import stack_home

        home = stack_home(None)
    return Client.from_env(getattr(args, "address", None), getattr(args, "token", None), home=home)


def _json(value) -> None:
    from google.protobuf.json_format import MessageToDict
    from google.protobuf.message import Message

    def conv(v):
        if isinstance(v, Message):
            return MessageToDict(v, preserving_proto_field_name=True)
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    print(json.dumps(conv(value), indent=2, default=str))


def _table(title: str, columns: list[str], rows: list[list]) -> None:
    table = Table(title=title)
    # the first column is the id (or name) a user copies into the next command: never cut it,
    # let the other columns wrap instead (an 80-column pipe cut every model id to "timm/convne…")
    key = 1 if columns[:1] == ["#"] else 0
    for i, column in enumerate(columns):
        if i == key:
            width = max([len(column), *(len(str(row[i])) for row in rows)])
            table.add_column(column, no_wrap=True, min_width=width)
        else:
            table.add_column(column)
    for row in rows:
        table.add_row(*[escape(str(c)) for c in row])
    console.print(table)


def _out(args, value, title: str, columns: list[str], rows: list[list]) -> int:
    if getattr(args, "output", "table") == "json":
        _json(value)
    else:
        _table(title, columns, rows)
    return 0


def _when(ts) -> str:
    return ts.ToDatetime().strftime("%Y-%m-%d %H:%M:%S") if ts.seconds else "-"


def _types(values) -> str:
    from trainyard.client import task_type_name

    return ",".join(task_type_name(v) for v in values)


def _dataset_rows(items) -> list[list]:
    return [
        [
            d.id,
            d.name,
            _types(d.task_types),
            d.latest_version.case_count,
            ",".join(c.name for c in d.latest_version.classes)[:60],
            _when(d.create_time),
        ]
        for d in items
    ]


DATASET_COLUMNS = ["id", "name", "task types", "cases", "classes", "created"]


def _ask(prompt: str, *, flag: str, choices: list[str] | None = None, default: str | None = None) -> str:
    """One answer from stdin; `flag` is what gives it without asking, named when stdin has no answer."""
    from rich.prompt import Prompt
    from rich.text import Text

    kwargs = {"console": console}
    if choices:
        kwargs["choices"] = choices
    if default is not None:
        kwargs["default"] = default
    try:
        return Prompt.ask(prompt, **kwargs)
    except EOFError:
        console.print()
        raise ValueError(
            f"no answer for '{Text.from_markup(prompt).plain}': stdin ended (not a terminal?); pass {flag}, or run in a terminal to be asked"
        ) from None


def cmd_datasets_import(args) -> int:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with _client(args) as ty:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=err,  # stdout stays the result (--output json pipes cleanly)
            transient=True,
            disable=not err.is_terminal,
        ) as bar:
            job = bar.add_task(f"uploading {Path(args.path).name}", total=None)

            def progress(sent: int, total: int) -> None:
                bar.update(job, completed=sent, total=total)
                if sent == total:  # the service now decodes, hashes and stores every image: say so
                    bar.update(job, description="importing on the server (decode, check, store)")

            ds = ty.datasets.upload(
                args.path,
                args.name,
                description=args.description or "",
                format=args.format,
                val_fraction=args.val_fraction,
                test_fraction=args.test_fraction,
                task_type=args.task_type,
                accept_partial=args.accept_partial,
                ignore_index=args.ignore_index,
                drop_duplicates=args.drop_duplicates,
                progress=progress,
            )
        if args.output == "json":
            _json(ds)
        else:
            console.print(
                f"[green]imported[/] dataset [bold]{escape(ds.name)}[/] ({ds.id}): {ds.latest_version.case_count} cases, task types {_types(ds.task_types)}"
            )
            version = ds.latest_version
            for warning in version.import_warnings[:10]:
                console.print(f"  [yellow]warning:[/] {escape(warning)}")
            if len(version.import_warnings) > 10 and version.import_id:
                console.print(
                    f"  {len(version.import_warnings) - 10} more: [bold]trainyard datasets report {version.import_id}[/]"
                )
    return 0


def cmd_datasets_list(args) -> int:
    with _client(args) as ty:
        items = ty.datasets.list(args.task_type)
    return _out(args, items, "datasets", DATASET_COLUMNS, _dataset_rows(items))


def cmd_datasets_show(args) -> int:
    with _client(args) as ty:
        d = ty.datasets.get(args.id)
    if args.output == "json":
        _json(d)
        return 0
    v = d.latest_version
    console.print(f"[bold]{escape(d.name)}[/] ({d.id})  task types: {_types(d.task_types)}")
    console.print(
        f"  version {v.number} ({v.id}): {v.case_count} cases; train/val/test {v.split_counts.train}/{v.split_counts.val}/{v.split_counts.test}"
    )
    _table("classes", ["index", "name", "count"], [[c.index, c.name, c.count] for c in v.classes])
    return 0


def contact_sheet(cases, out: Path, columns: int = 4) -> Path:
    """One PNG with the previews (annotations drawn) in a grid, each captioned."""
    import io

    from PIL import Image, ImageDraw

    thumbs = [Image.open(io.BytesIO(c.preview_jpeg)).convert("RGB") for c in cases if c.preview_jpeg]
    if not thumbs:
        raise ValueError("the dataset returned no preview images")
    w = max(t.width for t in thumbs)
    h = max(t.height for t in thumbs)
    caption = 14
    rows = (len(thumbs) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * w, rows * (h + caption)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (case, thumb) in enumerate(zip([c for c in cases if c.preview_jpeg], thumbs, strict=True)):
        x, y = (i % columns) * w, (i // columns) * (h + caption)
        sheet.paste(thumb, (x, y))
        label = ",".join(sorted({a.class_name for a in case.annotations if a.class_name}))
        draw.text((x + 2, y + h), f"{case.id} {label}"[:40], fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def cmd_datasets_preview(args) -> int:
    with _client(args) as ty:
        cases = ty.datasets.preview(args.id, count=args.count)
    if args.out:
        path = contact_sheet(cases, Path(args.out))
        console.print(f"contact sheet of {len(cases)} cases written to [bold]{escape(str(path))}[/]")
    rows = [
        [c.id, c.source_path, f"{c.width}x{c.height}", ",".join(a.class_name for a in c.annotations)] for c in cases
    ]
    if args.output == "json" or not args.out:
        return _out(args, cases, "preview", ["case", "file", "size", "annotations"], rows)
    return 0


def cmd_datasets_report(args) -> int:
    from trainyard.dataset.v1 import dataset_pb2

    with _client(args) as ty:
        report = ty.datasets.report(args.import_id)
    status = report.status
    if args.output == "json":
        _json({"import": status, "warnings": report.warnings, "rejected_files": report.rejected_files})
        return 0
    state = dataset_pb2.ImportState.Name(status.state).removeprefix("IMPORT_STATE_").lower()
    made = f" -> dataset {status.dataset_id} version {status.version_id}" if status.version_id else ""
    console.print(f"import [bold]{escape(status.id)}[/]: {state}{made}")
    console.print(f"  {escape(status.message)}")
    for warning in report.warnings:
        console.print(f"  [yellow]warning:[/] {escape(warning)}")
    if report.rejected_files:
        _table(
            f"rejected files ({len(report.rejected_files)})",
            ["file", "reason"],
            [[r.path, r.reason] for r in report.rejected_files],
        )
    return 0


def cmd_datasets_delete(args) -> int:
    with _client(args) as ty:
        ty.datasets.delete(args.id)
    console.print(f"deleted dataset {escape(args.id)}")
    return 0


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


# -- evaluations ----------------------------------------------------------------------------------
EVALUATION_COLUMNS = [
    "id",
    "state",
    "model",
    "dataset version",
    "split",
    "headline",
    "wrong",
    "label errors",
    "created",
]


def _evaluation_rows(items) -> list[list]:
    from trainyard.client import evaluation_state_name

    return [
        [
            e.id,
            evaluation_state_name(e.state) + (" (auto)" if e.automatic else ""),
            e.model_id,
            e.dataset_version_id,
            e.summary.split_note or "-",
            f"{e.summary.headline_metric} {e.summary.headline_value:.4f}" if e.summary.headline_metric else "-",
            f"{e.summary.error_case_count}/{e.summary.case_count}" if e.summary.case_count else "-",
            e.summary.label_error_count if e.summary.case_count else "-",
            _when(e.create_time),
        ]
        for e in items
    ]


def _evaluation_id(ty, value: str) -> str:
    """An evaluation id, or a training task's id for its automatic evaluation."""
    if value.startswith("ev"):
        return value
    return ty.evaluations.of_task(value).id


def _watch_evaluation(ty, evaluation_id: str, output: str) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from trainyard.client import evaluation_state_name
    from trainyard.training.v1 import evaluation_pb2

    with Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True, disable=not err.is_terminal,
    ) as bar:  # fmt: skip
        job = bar.add_task("queued", total=None)
        for change in ty.evaluations.watch(evaluation_id):
            if output == "json":
                _json(change)
            elif change.log:
                bar.console.print(f"[dim]{escape(change.log)}[/]")
            if change.HasField("evaluation"):
                e = change.evaluation
                bar.update(job, description=evaluation_state_name(e.state))
                if e.progress.total_steps:
                    bar.update(job, total=e.progress.total_steps, completed=e.progress.step)
    e = ty.evaluations.get(evaluation_id)
    ok = e.state == evaluation_pb2.EVALUATION_STATE_SUCCEEDED
    if output != "json":
        color = "green" if ok else "red"
        console.print(f"evaluation {e.id}: [{color}]{evaluation_state_name(e.state)}[/] {escape(e.failure_reason)}")
        if ok:
            _print_summary(e.summary, f"evaluation {e.id}")
    return 0 if ok else 1


def cmd_eval_create(args) -> int:
    with _client(args) as ty:
        e = ty.evaluations.create(
            args.model, args.dataset, dataset_version_id=args.version or "", splits=args.split or None,
            batch_size=args.batch_size or 0,
        )  # fmt: skip
        if args.watch:
            return _watch_evaluation(ty, e.id, args.output)
    if args.output == "json":
        _json(e)
    else:
        console.print(f"[green]queued[/] evaluation [bold]{e.id}[/] of {escape(e.model_id)}")
        console.print(f"  follow it: [bold]trainyard eval watch {e.id}[/]")
    return 0


def cmd_eval_watch(args) -> int:
    with _client(args) as ty:
        return _watch_evaluation(ty, _evaluation_id(ty, args.id), args.output)


def cmd_eval_show(args) -> int:
    from trainyard.client import evaluation_state_name

    with _client(args) as ty:
        e = ty.evaluations.get(_evaluation_id(ty, args.id))
    if args.output == "json":
        _json(e)
        return 0
    _table(f"evaluation {e.id}", EVALUATION_COLUMNS, _evaluation_rows([e]))
    if e.failure_reason:
        console.print(f"[red]{evaluation_state_name(e.state)}:[/] {escape(e.failure_reason)}")
    if e.summary.headline_metric:
        _print_summary(e.summary, f"evaluation {e.id}")
    return 0


def cmd_eval_list(args) -> int:
    with _client(args) as ty:
        items = ty.evaluations.list(args.model or "")
    return _out(args, items, "evaluations", EVALUATION_COLUMNS, _evaluation_rows(items))


def cmd_eval_cancel(args) -> int:
    with _client(args) as ty:
        e = ty.evaluations.cancel(args.id)
    console.print(f"evaluation {e.id} cancelled")
    return 0


def image_sheet(panels: list[tuple[bytes, str]], out: Path, columns: int = 3) -> Path:
    """One PNG of drawn panels (JPEG bytes) in a grid, each captioned below."""
    import io

    from PIL import Image, ImageDraw

    thumbs = [(Image.open(io.BytesIO(jpeg)).convert("RGB"), caption) for jpeg, caption in panels if jpeg]
    if not thumbs:
        raise ValueError("nothing to draw: no case matched")
    w, h = max(t.width for t, _ in thumbs), max(t.height for t, _ in thumbs)
    caption_h, columns = 28, min(columns, len(thumbs))
    rows = (len(thumbs) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * (w + 4), rows * (h + caption_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (thumb, caption) in enumerate(thumbs):
        x, y = (i % columns) * (w + 4), (i // columns) * (h + caption_h)
        sheet.paste(thumb, (x, y))
        for line, text in enumerate((caption[:70], caption[70:140])):
            draw.text((x + 2, y + h + 1 + 12 * line), text, fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def cmd_eval_cases(args) -> int:
    from trainyard.client import case_kind_name

    with _client(args) as ty:
        cases = ty.evaluations.cases(
            _evaluation_id(ty, args.id), class_name=args.class_name or "", kind=args.kind,
            predicted_class=args.predicted or "", previews=bool(args.out), limit=args.limit,
        )  # fmt: skip
    if args.out:
        path = image_sheet([(c.preview_jpeg, f"{c.case_id} {c.summary}") for c in cases], Path(args.out))
        err.print(f"contact sheet of {len(cases)} case(s) written to {path}")
    rows = [
        [c.case_id, ",".join(case_kind_name(k) for k in c.kinds), f"{c.error_score:.3f}", c.summary, c.source_path]
        for c in cases
    ]
    return _out(args, cases, "cases, worst first", ["case", "kind", "error", "what happened", "file"], rows)


def cmd_eval_label_errors(args) -> int:
    with _client(args) as ty:
        errors = ty.evaluations.label_errors(_evaluation_id(ty, args.id), previews=bool(args.out), limit=args.limit)
    if args.out:
        path = image_sheet(
            [(e.preview_jpeg, f"{e.case_id} {e.kind}: {e.given_label} -> {e.suggested_label}") for e in errors],
            Path(args.out),
        )
        err.print(f"contact sheet of {len(errors)} suspected label error(s) written to {path}")
    rows = [
        [e.case_id, e.kind, e.given_label, e.suggested_label, f"{e.score:.3f}", e.evidence, e.source_path]
        for e in errors
    ]
    columns = ["case", "kind", "given", "suggested", "score", "evidence", "file"]
    return _out(args, errors, "suspected label errors, most suspicious first", columns, rows)


def cmd_predict(args) -> int:
    import io

    images: list = []
    for item in args.images:
        if ":" in item and not Path(item).exists():  # VERSION_ID:CASE_ID
            version, _, case = item.partition(":")
            images.append((version, case))
        else:
            images.append(item)
    with _client(args) as ty:
        response = ty.predict(args.model, images, threshold=args.threshold, top_k=args.top_k, draw=bool(args.out))
    if args.out:
        from PIL import Image

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for p in response.predictions:
            stem = Path(p.name).stem or "image"
            Image.open(io.BytesIO(p.drawn_jpeg)).save(out / f"{stem}.predicted.jpg")
            if p.class_mask_png:
                (out / f"{stem}.mask.png").write_bytes(p.class_mask_png)
        err.print(f"{len(response.predictions)} drawn prediction(s) written to {out}")
    if args.output == "json":
        _json(response)
        return 0
    rows = []
    for p in response.predictions:
        if p.classes:
            what = ", ".join(f"{c.class_name} {c.score:.3f}" for c in p.classes)
        elif p.detections or response.model.task_type in ("detection", "instance_segmentation"):
            what = f"{len(p.detections)} object(s): " + ", ".join(
                f"{d.class_name} {d.score:.2f} [{', '.join(f'{v:.0f}' for v in d.box)}]" for d in p.detections[:8]
            )
        else:
            what = ", ".join(f"{k} {v:.1%}" for k, v in sorted(p.class_fractions.items(), key=lambda kv: -kv[1]))
        rows.append([p.name, f"{p.width}x{p.height}", what])
    m = response.model
    _table(f"{m.model_id} ({m.task_type}, threshold {m.threshold:.2f})", ["image", "size", "prediction"], rows)
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


def cmd_models_delete(args) -> int:
    with _client(args) as ty:
        ty.models.delete(args.id)
    console.print(f"deleted trained model {escape(args.id)} (its weights stay with its task until that is deleted)")
    return 0


KEY_COLUMNS = ["id", "name", "role", "member", "created", "expires", "revoked"]


def _key_rows(items) -> list[list]:
    from trainyard.auth.v1 import auth_pb2

    return [
        [
            k.id,
            k.name,
            auth_pb2.Role.Name(k.role).removeprefix("ROLE_").lower(),
            "",
            _when(k.create_time),
            _when(k.expire_time),
            "yes" if k.revoked else "",
        ]
        for k in items
    ]


def cmd_keys_create(args) -> int:
    with _client(args) as ty:
        made = ty.keys.create(
            args.name,
            args.role,
            member=args.member or "",
            expire_seconds=int((args.expires_days or 0) * 86400),
            platform_operator=args.platform_operator,
        )
    if args.output == "json":
        _json(made)
        return 0
    console.print(
        f"created key {made.key.id} ({args.role}) in project {made.key.project}; the token is shown only now:"
    )
    print(made.token)
    return 0


def cmd_keys_list(args) -> int:
    with _client(args) as ty:
        items = ty.keys.list()
    return _out(args, items, "api keys", KEY_COLUMNS, _key_rows(items))


def cmd_keys_revoke(args) -> int:
    with _client(args) as ty:
        key = ty.keys.revoke(args.id)
    console.print(f"revoked key {key.id} ({escape(key.name)})")
    return 0


def cmd_token(args) -> int:
    with _client(args) as ty:
        made = ty.create_token(args.ttl, args.role)
    if args.output == "json":
        _json(made)
    else:
        print(made.token)
    return 0


def cmd_whoami(args) -> int:
    from trainyard.auth.v1 import auth_pb2

    with _client(args) as ty:
        key = ty.whoami()
    if args.output == "json":
        _json(key)
    else:
        console.print(
            f"key {key.id} ({escape(key.name)}) project [bold]{key.project}[/] role {auth_pb2.Role.Name(key.role).removeprefix('ROLE_').lower()}"
        )
    return 0


def cmd_projects_create(args) -> int:
    with _client(args) as ty:
        made = ty.projects.create(args.id, args.display_name or "")
    if args.output == "json":
        _json(made)
        return 0
    console.print(f"created project {made.project.id}; its admin token (shown only now):")
    print(made.admin_token)
    return 0


def cmd_projects_list(args) -> int:
    with _client(args) as ty:
        items = ty.projects.list()
    return _out(
        args,
        items,
        "projects",
        ["id", "name", "created", "by"],
        [[p.id, p.display_name, _when(p.create_time), p.created_by] for p in items],
    )


def cmd_members_add(args) -> int:
    with _client(args) as ty:
        m = ty.projects.add_member(args.member, args.role)
    console.print(f"{escape(m.member)} is a member of {m.project} ({args.role})")
    return 0


def cmd_members_list(args) -> int:
    from trainyard.auth.v1 import auth_pb2

    with _client(args) as ty:
        items = ty.projects.members()
    return _out(
        args,
        items,
        "members",
        ["member", "role", "added"],
        [[m.member, auth_pb2.Role.Name(m.role).removeprefix("ROLE_").lower(), _when(m.create_time)] for m in items],
    )


def cmd_members_remove(args) -> int:
    with _client(args) as ty:
        revoked = ty.projects.remove_member(args.member)
    console.print(f"removed {escape(args.member)}; revoked keys: {', '.join(revoked) or 'none'}")
    return 0


def cmd_audit(args) -> int:
    with _client(args) as ty:
        items = ty.audit(args.limit, args.method or "")
    rows = [[_when(e.time), e.principal, e.method.rsplit("/", 1)[-1], e.target, e.code, e.message[:60]] for e in items]
    return _out(args, items, "audit log", ["when", "who", "what", "target", "result", "message"], rows)


def add_flow_commands(sub) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--address", help="gateway host:port (default $TRAINYARD_GATEWAY_ADDRESS or the local stack)")
    common.add_argument("--token", help="API token (default $TRAINYARD_TOKEN or the local stack's admin token)")
    common.add_argument("--output", "-o", choices=["table", "json"], default="table", help="output format")

    def leaf(parent, name, func, help_):
        p = parent.add_parser(name, parents=[common], help=help_)
        p.set_defaults(func=func)
        return p

    ds = sub.add_parser("datasets", help="import, list, show and preview datasets").add_subparsers(
        dest="ds_command", metavar="ACTION", required=True
    )
    p = leaf(ds, "import", cmd_datasets_import, "upload an archive (zip, tar, tar.gz) as a new dataset")
    p.add_argument("path")
    p.add_argument("--name", required=True)
    p.add_argument("--format", help="image_folder, csv, coco, voc, yolo, mask_folder (default: detected)")
    p.add_argument("--description")
    p.add_argument("--val-fraction", type=float, default=0.0)
    p.add_argument("--test-fraction", type=float, default=0.0)
    p.add_argument(
        "--task-type", help="which annotations to import when the archive holds several kinds (default: detected)"
    )
    p.add_argument("--accept-partial", action="store_true", help="import the good cases when some are bad")
    p.add_argument(
        "--ignore-index", type=int, help="mask value of unlabelled pixels (default 255; e.g. 11 for a void value 11)"
    )
    p.add_argument(
        "--drop-duplicates", action="store_true", help="keep one case of each group of identical images in a split"
    )
    p = leaf(ds, "list", cmd_datasets_list, "datasets of the project")
    p.add_argument("--task-type", help="only datasets that can train this task type")
    leaf(ds, "show", cmd_datasets_show, "one dataset").add_argument("id")
    p = leaf(ds, "preview", cmd_datasets_preview, "sample cases with annotations drawn")
    p.add_argument("id")
    p.add_argument("--count", type=int, default=8)
    p.add_argument("--out", help="write a contact sheet PNG here")
    leaf(ds, "delete", cmd_datasets_delete, "delete a dataset").add_argument("id")
    leaf(ds, "report", cmd_datasets_report, "an import's full report: every warning and rejected file").add_argument(
        "import_id", help="the import id (a version's import_id, or the one an import's error names)"
    )

    mz = sub.add_parser("models", help="browse the model zoo").add_subparsers(
        dest="models_command", metavar="ACTION", required=True
    )
    p = leaf(mz, "list", cmd_models_list, "models (network x pre-trained weights)")
    p.add_argument("--task-type")
    p.add_argument("--family")
    p.add_argument("--query")
    p.add_argument(
        "--origin", choices=["catalog", "trained"], help="only catalog models, or the project's trained ones"
    )
    p.add_argument("--limit", type=int, default=50, help="rows to show (0: all)")
    leaf(mz, "families", cmd_models_families, "model families").add_argument("--task-type")
    leaf(mz, "show", cmd_models_show, "one model").add_argument("id")
    p = leaf(mz, "pull", cmd_models_pull, "fetch pre-trained weights from the zoo's configured sources")
    p.add_argument("models", nargs="*", metavar="MODEL", help="catalog model ids")
    p.add_argument("--family", help="every model of this family")
    p.add_argument("--task-type", help="every model serving this task type")
    p.add_argument("--preset", action="append", help="the model of this preset (repeatable)")
    p = leaf(mz, "import", cmd_models_import, "upload a weight file as a model's pre-trained weights")
    p.add_argument("file", help="the weight file (.pth, .safetensors)")
    p.add_argument("--model", help="the catalog model the weights are for")
    p.add_argument("--public", action="store_true", help="every project's weights (platform operators only)")

    wt = sub.add_parser("weights", help="bundles of pre-trained weights for sites without internet").add_subparsers(
        dest="weights_command", metavar="ACTION", required=True
    )
    p = leaf(wt, "bundle", cmd_weights_bundle, "write stored weights to a tar with a manifest of hashes")
    p.add_argument("models", nargs="*", metavar="MODEL", help="catalog model ids")
    p.add_argument("--models", dest="more_models", nargs="+", metavar="MODEL", help="catalog model ids")
    p.add_argument("--family", help="every model of this family")
    p.add_argument("--task-type", help="every model serving this task type")
    p.add_argument("--preset", action="append", help="the model of this preset (repeatable)")
    p.add_argument("--out", required=True, help="the tar to write")
    p = leaf(wt, "import", cmd_weights_import, "verify a bundle and load its weights into the zoo")
    p.add_argument("path")
    p.add_argument("--public", action="store_true", help="every project's weights (platform operators only)")

    ps = sub.add_parser("presets", help="specialized training presets").add_subparsers(
        dest="presets_command", metavar="ACTION", required=True
    )
    leaf(ps, "list", cmd_presets_list, "presets, whether their weights are ready, what to pull").add_argument(
        "--task-type"
    )
    leaf(ps, "show", cmd_presets_show, "one preset").add_argument("id")
    leaf(mz, "delete", cmd_models_delete, "remove a trained model (trained/<task id>) from the zoo").add_argument("id")

    p = leaf(sub, "recommend", cmd_recommend, "ranked model suggestions for a task and dataset")
    p.add_argument("--task-type", required=True)
    p.add_argument("--dataset")
    p.add_argument("--data-type")
    p.add_argument("--preference", help="fastest, balanced, most_accurate, smallest")
    p.add_argument("--limit", type=int, default=5)

    tr = sub.add_parser("train", help="start, watch, list and cancel training tasks").add_subparsers(
        dest="train_command", metavar="ACTION", required=True
    )
    p = leaf(tr, "start", cmd_train_start, "start a training task (asks for what the flags leave out)")
    from trainyard.wizard import add_flags

    add_flags(p)
    p = leaf(tr, "watch", cmd_train_watch, "follow a task: epochs, live metrics, logs")
    p.add_argument("id")
    p.add_argument("--after", type=int, default=0, help="resume after this event sequence (from an ended watch)")
    leaf(tr, "trials", cmd_train_trials, "trials of a hyperparameter search").add_argument("id")
    p = leaf(tr, "schema", cmd_train_schema, "hyperparameters: ranges, defaults, default search space")
    p.add_argument("--model")
    p.add_argument("--task-type")
    leaf(tr, "list", cmd_train_list, "training tasks").add_argument("--state")
    leaf(tr, "show", cmd_train_show, "one task").add_argument("id")
    leaf(tr, "cancel", cmd_train_cancel, "cancel a task").add_argument("id")
    leaf(tr, "delete", cmd_train_delete, "delete an ended task with its checkpoints and artifacts").add_argument("id")
    p = leaf(tr, "download", cmd_train_download, "download a task's artifacts through the platform")
    p.add_argument("id")
    p.add_argument("--out", required=True, help="folder to write them to")
    p.add_argument("--name", action="append", help="only this artifact (repeatable), e.g. model.onnx")

    ev = sub.add_parser("eval", help="evaluations: summaries, per-case results, label errors").add_subparsers(
        dest="eval_command", metavar="ACTION", required=True
    )
    p = leaf(ev, "create", cmd_eval_create, "evaluate a model of the project on a dataset")
    p.add_argument("--model", required=True, help="zoo model id, e.g. trained/TASK_ID")
    p.add_argument("--dataset", required=True)
    p.add_argument("--version", help="dataset version id (default: the latest)")
    p.add_argument("--split", action="append", help="train, val or test (repeatable; default test, else val)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--watch", action="store_true", help="follow it to its end")
    leaf(ev, "watch", cmd_eval_watch, "follow an evaluation").add_argument("id")
    leaf(ev, "show", cmd_eval_show, "an evaluation (or a task's automatic one, by task id)").add_argument("id")
    leaf(ev, "list", cmd_eval_list, "evaluations of the project").add_argument("--model")
    leaf(ev, "cancel", cmd_eval_cancel, "cancel an evaluation").add_argument("id")
    p = leaf(ev, "cases", cmd_eval_cases, "per-case results, worst first")
    p.add_argument("id", help="evaluation id, or a training task id for its automatic evaluation")
    p.add_argument("--class", dest="class_name", help="only cases with this class (given or predicted)")
    p.add_argument("--kind", help="correct, misclassified, false_positive, missed_object or low_iou")
    p.add_argument("--predicted", help="only cases where this class was predicted wrongly (misclassified as X)")
    p.add_argument("--limit", type=int, default=24)
    p.add_argument("--out", help="write a contact sheet PNG (given labels beside the model's) here")
    p = leaf(ev, "label-errors", cmd_eval_label_errors, "suspected label errors, most suspicious first")
    p.add_argument("id", help="evaluation id, or a training task id for its automatic evaluation")
    p.add_argument("--limit", type=int, default=24)
    p.add_argument("--out", help="write a contact sheet PNG here")

    p = leaf(sub, "predict", cmd_predict, "run a trained model on images (its ONNX export)")
    p.add_argument("model", help="zoo model id, e.g. trained/TASK_ID")
    p.add_argument("images", nargs="+", help="image files, or VERSION_ID:CASE_ID for a dataset case")
    p.add_argument("--threshold", type=float, help="confidence threshold (default: the model's own)")
    p.add_argument("--top-k", type=int, default=0, help="classification: top classes (default 5)")
    p.add_argument("--out", help="write each image with its predictions drawn into this folder")

    ks = sub.add_parser("keys", help="API keys of the project").add_subparsers(
        dest="keys_command", metavar="ACTION", required=True
    )
    p = leaf(ks, "create", cmd_keys_create, "create a key; prints its token once")
    p.add_argument("name")
    p.add_argument("--role", default="viewer", choices=["viewer", "editor", "admin"])
    p.add_argument("--member")
    p.add_argument("--expires-days", type=float)
    p.add_argument("--platform-operator", action="store_true", help="may change the public weights (operators only)")
    leaf(ks, "list", cmd_keys_list, "keys of the project")
    leaf(ks, "revoke", cmd_keys_revoke, "revoke a key").add_argument("id")

    p = leaf(sub, "token", cmd_token, "print a short-lived token for this key")
    p.add_argument("--ttl", type=int, default=3600, help="seconds (at most 86400)")
    p.add_argument("--role", choices=["viewer", "editor", "admin"])
    leaf(sub, "whoami", cmd_whoami, "the key in use")

    pj = sub.add_parser("projects", help="projects and their members").add_subparsers(
        dest="projects_command", metavar="ACTION", required=True
    )
    p = leaf(pj, "create", cmd_projects_create, "create a project; prints its admin token once")
    p.add_argument("id")
    p.add_argument("--display-name")
    leaf(pj, "list", cmd_projects_list, "projects you may see")
    p = leaf(pj, "add-member", cmd_members_add, "add a member or change its role")
    p.add_argument("member")
    p.add_argument("--role", required=True, choices=["viewer", "editor", "admin"])
    leaf(pj, "members", cmd_members_list, "members of the project")
    leaf(pj, "remove-member", cmd_members_remove, "remove a member and revoke its keys").add_argument("member")

    p = leaf(sub, "audit", cmd_audit, "the audit log of mutating calls")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--method", help="only methods containing this text")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainyard", description="trainyard: train image models by transfer learning")
    parser.add_argument("--home", help="stack folder (default $TRAINYARD_HOME or ./.trainyard)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    stack_p = sub.add_parser("stack", help="run the whole platform on this machine")
    stack_sub = stack_p.add_subparsers(dest="stack_command", metavar="ACTION", required=True)
    up_p = stack_sub.add_parser("up", help="start NATS, S3, the services, the gateway and a trainer")
    up_p.add_argument(
        "--gateway-port",
        type=int,
        default=None,
        help="gateway port (default $TRAINYARD_GATEWAY_PORT or 50051; 0 picks a free one)",
    )
    up_p.add_argument(
        "--console-port",
        type=int,
        default=None,
        help="the console's HTTP port (default $TRAINYARD_CONSOLE_PORT or 50080; 0 picks a free one)",
    )
    up_p.add_argument("--no-trainer", action="store_true", help="do not start a trainer")
    up_p.add_argument("--no-import-weights", action="store_true", help="skip importing the MobileNetV2 weights")
    up_p.add_argument("--timeout", type=float, default=300.0, help="seconds each component may take to become healthy")
    up_p.set_defaults(func=cmd_stack_up)
    stack_sub.add_parser("down", help="stop what `up` started; data stays").set_defaults(func=cmd_stack_down)
    stack_sub.add_parser("status", help="processes, addresses and health").set_defaults(func=cmd_stack_status)
    logs_p = stack_sub.add_parser("logs", help="print the tail of the logs")
    logs_p.add_argument("name", nargs="?", help="component: nats, s3, dataset, modelzoo, recommend, training, ...")
    logs_p.add_argument("-n", "--lines", type=int, default=None, help="lines to show (100 for one, 20 each for all)")
    logs_p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs_p.set_defaults(func=cmd_stack_logs)
    stack_sub.add_parser("env", help="shell exports to reach the running stack").set_defaults(func=cmd_stack_env)

    auth_p = sub.add_parser("auth", help="credentials")
    auth_sub = auth_p.add_subparsers(dest="auth_command", metavar="ACTION", required=True)
    auth_sub.add_parser("token", help="print the local stack's admin token").set_defaults(func=cmd_auth_token)

    trainer_p = sub.add_parser("trainer", help="run a trainer node in the foreground (python -m trainer)")
    trainer_p.add_argument("trainer_args", nargs=argparse.REMAINDER, help="passed to python -m trainer")
    trainer_p.set_defaults(func=cmd_trainer)
    add_flow_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from deploy.local.stack import StackError
    from trainyard.client import TrainyardError

    try:
        return args.func(args)
    except StackError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return 1
    except TrainyardError as exc:
        _print_error(exc)
        return 1
    except (ValueError, OSError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


_HINTS = {
    "UNAUTHENTICATED": "check the token (--token, $TRAINYARD_TOKEN, or `trainyard auth token` for the local stack)",
    "PERMISSION_DENIED": "this key's role may not do that; ask a project admin",
    "UNAVAILABLE": "is the gateway running? (`trainyard stack status`)",
    "RESOURCE_EXHAUSTED": "a limit was reached",
}


_REASON_HINTS = {
    "WEIGHTS_SOURCE_UNAVAILABLE": "a weights source could not be reached (the URLs above); retry later",
}


def _print_error(exc) -> None:
    err.print(f"[red]error:[/] {escape(exc.code.name)}: {escape(exc.message)}")
    for field, why in exc.violations.items():
        if why not in exc.message:  # the message often says it already
            err.print(f"  [bold]{escape(field)}[/]: {escape(why)}")
    if exc.retry_after:
        err.print(f"  retry in {exc.retry_after:.1f} s")
    if exc.metadata.get("after_sequence") and exc.metadata.get("task_id"):
        md = exc.metadata
        err.print(
            f"  resume: [bold]trainyard train watch {escape(md['task_id'])} --after {escape(md['after_sequence'])}[/]"
        )
    if exc.metadata.get("import_id"):
        err.print(f"  every file and reason: [bold]trainyard datasets report {escape(exc.metadata['import_id'])}[/]")
    hint = _REASON_HINTS.get(exc.reason) or _HINTS.get(exc.code.name)
    if hint:
        err.print(f"  [dim]{escape(hint)}[/]")


if __name__ == "__main__":
    sys.exit(main())
