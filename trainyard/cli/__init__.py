"""The `trainyard` command.

    trainyard stack up [--gateway-port N] [--console-port N] [--no-trainer] [--no-import-weights] [--timeout S]
    trainyard stack down | status | env
    trainyard stack logs [NAME] [-n LINES] [-f]
    trainyard auth token
    trainyard trainer [ARGS...]        # python -m trainer, joined to the local stack when one is up

TRAINYARD_HOME selects the stack's folder (default ./.trainyard).

The parser and main() are here; each command group is a module beside it: stack (the local stack), datasets,
models (with weights and presets), train (with recommend), evaluate (with predict), access (keys, tokens,
projects, audit), and common (what they share).
"""

from __future__ import annotations

import argparse

from rich.markup import escape

from trainyard.cli.access import (
    cmd_audit,
    cmd_keys_create,
    cmd_keys_list,
    cmd_keys_revoke,
    cmd_members_add,
    cmd_members_list,
    cmd_members_remove,
    cmd_projects_create,
    cmd_projects_list,
    cmd_token,
    cmd_whoami,
)
from trainyard.cli.common import _print_error, err
from trainyard.cli.datasets import (
    cmd_datasets_delete,
    cmd_datasets_import,
    cmd_datasets_list,
    cmd_datasets_preview,
    cmd_datasets_report,
    cmd_datasets_show,
)
from trainyard.cli.evaluate import (
    cmd_eval_cancel,
    cmd_eval_cases,
    cmd_eval_create,
    cmd_eval_label_errors,
    cmd_eval_list,
    cmd_eval_show,
    cmd_eval_watch,
    cmd_predict,
)
from trainyard.cli.models import (
    cmd_models_delete,
    cmd_models_families,
    cmd_models_import,
    cmd_models_list,
    cmd_models_pull,
    cmd_models_show,
    cmd_presets_list,
    cmd_presets_show,
    cmd_weights_bundle,
    cmd_weights_import,
)
from trainyard.cli.stack import (
    cmd_auth_token,
    cmd_stack_down,
    cmd_stack_env,
    cmd_stack_logs,
    cmd_stack_status,
    cmd_stack_up,
    cmd_trainer,
)
from trainyard.cli.train import (
    cmd_recommend,
    cmd_train_cancel,
    cmd_train_delete,
    cmd_train_download,
    cmd_train_list,
    cmd_train_schema,
    cmd_train_show,
    cmd_train_start,
    cmd_train_trials,
    cmd_train_watch,
)


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
