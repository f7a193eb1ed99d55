"""The `trainyard` command.

    trainyard stack up [--gateway-port N] [--no-trainer] [--no-import-weights] [--timeout S]
    trainyard stack down | status | env
    trainyard stack logs [NAME] [-n LINES] [-f]
    trainyard auth token
    trainyard trainer [ARGS...]        # python -m trainer, joined to the local stack when one is up

TRAINYARD_HOME selects the stack's folder (default ./.trainyard).
"""

from __future__ import annotations

import argparse
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
        with_trainer=not args.no_trainer,
        import_weights=not args.no_import_weights,
        timeout=args.timeout,
        say=_say,
    )
    home = state["home"]
    console.print()
    console.print(f"[bold green]trainyard is up[/]: gateway at [bold]{state['gateway']}[/]")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from deploy.local.stack import StackError

    try:
        return args.func(args)
    except StackError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
