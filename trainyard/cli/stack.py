"""trainyard stack up | down | status | logs | env, auth token, trainer: the local stack (deploy/local)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from rich.table import Table

from trainyard.cli.common import _home, _say, console


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
