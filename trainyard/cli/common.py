"""What every command group of the `trainyard` CLI shares: the consoles, the SDK client, tables and JSON output,
prompts, the error printout."""

from __future__ import annotations

import argparse
import json
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
