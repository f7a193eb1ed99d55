"""trainyard datasets import | list | show | preview | report | delete."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from trainyard.cli.common import _client, _json, _out, _table, _types, _when, console, err


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
