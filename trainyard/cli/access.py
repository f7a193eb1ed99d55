"""trainyard keys create | list | revoke, token, whoami, projects create | list | add-member | members |
remove-member, and audit."""

from __future__ import annotations

from rich.markup import escape

from trainyard.cli.common import _client, _json, _out, _when, console

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
