"""trainyard eval create | watch | show | list | cancel | cases | label-errors, and predict."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from trainyard.cli.common import _client, _json, _out, _table, _when, console, err
from trainyard.cli.train import _print_summary

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
