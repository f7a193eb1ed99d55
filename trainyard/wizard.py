"""`trainyard train start`: the General Training flow of the product page, step by step.

1. task type, each with what it means;
2. dataset: only those whose annotations fit the task type, then a preview of its cases (a contact
   sheet with their annotations drawn, written to a file and shown inline where the terminal shows
   images) with the class and split counts;
3. model and tuning, in one of three modes: general (auto select: data type and preference, then the
   ranked suggestions with their factors; or manual select: family -> variant -> pre-trained weights),
   specialized (a preset whose network is fixed) or retraining (one of the project's trained models);
   then every hyperparameter and the transfer strategy with the value the task would train with
   (CreateTrainingTask validate_only: the recipe for this model on this dataset), each editable, and
   an optional hyperparameter search;
4. name (a default from the dataset and the model), optional description, a summary, start, watch.

Every answer also has a flag; a step whose flags are given is not asked, so the whole flow scripts.
A wrong answer is said why and asked again; stdin without an answer (a pipe) names the flag to pass.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.markup import escape

from trainyard.cli.common import _table, console
from trainyard.cli.evaluate import image_sheet
from trainyard.cli.train import _pull_first, _watch

PAGE = 10
TASK_TYPES = {
    "classification": "one label per image (what is in the picture)",
    "detection": "a box and a class around every object",
    "segmentation": "semantic segmentation: a class for every pixel",
    "instance_segmentation": "a mask and a class for every object, each object apart",
}
DATA_TYPES = {
    "natural_photo": "everyday photographs",
    "medical": "medical imaging, often grayscale (X-ray, CT, dermoscopy)",
    "document": "scanned or rendered documents",
    "aerial": "aerial or satellite imagery",
    "microscopy": "microscopy",
    "industrial": "industrial inspection (parts, surfaces)",
    "other": "anything else",
}
PREFERENCES = {
    "balanced": "a trade-off between training time and quality",
    "fastest": "the shortest training time",
    "most_accurate": "the best expected quality, whatever it costs",
    "smallest": "the fewest parameters, for edge devices",
}
MODES = {
    "general": "any zoo model: recommended for your data (auto select) or picked by hand (manual select)",
    "specialized": "a preset for one kind of data: its network is fixed, its defaults tuned for that data",
    "retraining": "train one of this project's trained models further, on this or more data",
}
SELECTIONS = {
    "auto": "ranked suggestions for your data type and preference, with why",
    "manual": "browse model families, their variants and their pre-trained weights",
}
STRATEGIES = {
    "probe_then_fine_tune": "fit the new head on frozen features (seconds), then train every layer gently",
    "fine_tune_all": "train every layer from the pre-trained weights",
    "linear_probe": "freeze the backbone; train only the new head",
    "gradual_unfreeze": "train the head first, then unfreeze the backbone step by step",
    "from_scratch": "ignore pre-trained weights; start from random ones",
}


class Again(ValueError):
    """A wrong answer: say why and ask again."""


# -- asking ----------------------------------------------------------------------------------------
def ask(
    prompt: str, *, flag: str, default: str | None = None, parse: Callable[[str], Any] = str, label: str = ""
) -> Any:
    """Ask until `parse` accepts the answer (it raises Again with the reason otherwise). Without a
    terminal answer (stdin ended) a ValueError names `flag`, the way to give the answer without asking."""
    from rich.prompt import Prompt

    while True:
        try:
            text = Prompt.ask(prompt, console=console, default=default, show_default=default not in (None, ""))
        except EOFError:
            console.print()
            raise ValueError(
                f"no answer for '{label or prompt}': stdin ended (not a terminal?); pass {flag}, or run in a terminal to be asked"
            ) from None
        try:
            return parse((text or "").strip())
        except Again as exc:
            if str(exc):  # an empty reason: nothing wrong (a page was turned), just ask again
                console.print(f"[red]{escape(str(exc))}[/]; try again")


def yes(prompt: str, *, flag: str, default: bool = True) -> bool:
    def parse(text: str) -> bool:
        if text.lower() in ("y", "yes"):
            return True
        if text.lower() in ("n", "no"):
            return False
        raise Again(f"{text!r} is not y or n")

    return ask(f"{prompt} (y/n)", flag=flag, default="y" if default else "n", parse=parse)


def pick(
    items: Sequence[Any],
    *,
    what: str,
    flag: str,
    columns: list[str],
    row: Callable[[Any], list],
    keys: Callable[[Any], Sequence[str]] = lambda item: (),
    default: int | None = 1,
    title: str = "",
    shown: bool = False,
) -> Any:
    """Show `items` a page at a time, numbered, and return the one picked by number or by a key (an id or
    name); n / p turn the page. A number out of range or an unknown key asks again."""
    pages = max(1, (len(items) + PAGE - 1) // PAGE)
    page = 0

    def show() -> None:
        start = page * PAGE
        rows = [[start + i + 1, *row(item)] for i, item in enumerate(items[start : start + PAGE])]
        more = f" (page {page + 1} of {pages}: n next, p previous)" if pages > 1 else ""
        _table(f"{title or what}{more}", ["#", *columns], rows)

    if not shown:  # else the caller showed them already, numbered the same way
        show()

    def parse(text: str) -> Any:
        nonlocal page
        if pages > 1 and text.lower() in ("n", "p"):
            page = min(pages - 1, page + 1) if text.lower() == "n" else max(0, page - 1)
            show()
            raise Again("")
        if text.isdigit():
            number = int(text)
            if 1 <= number <= len(items):
                return items[number - 1]
            raise Again(f"there is no {what} #{number} (1..{len(items)})")
        for item in items:
            if text and text in keys(item):
                return item
        raise Again(f"no {what} {text!r}: give its # (1..{len(items)})" + (" or its id" if keys else ""))

    return ask(
        f"{what} (#{' or id' if keys else ''})",
        label=what,
        flag=flag,
        default=str(default) if default is not None and items else None,
        parse=parse,
    )


def choose(options: dict[str, str], *, what: str, flag: str, default: str) -> str:
    """One of a few named options, shown with what each means; by number or name."""
    names = list(options)
    chosen = pick(
        names,
        what=what,
        flag=flag,
        columns=[what, "what it means"],
        row=lambda n: [n, options[n]],
        keys=lambda n: (n, n.replace("_", "-"), n.replace("_", " ")),
        default=names.index(default) + 1,
    )
    return chosen


# -- the flow --------------------------------------------------------------------------------------
class Wizard:
    def __init__(self, ty, args: argparse.Namespace) -> None:
        self.ty = ty
        self.args = args
        self.asked = False  # whether anything was asked: then the summary and the final yes come too
        self.schema: dict[str, Any] = {}

    # -- 1. task type
    def task_type(self) -> str:
        from trainyard.client import task_type, task_type_name

        if self.args.task_type:
            return task_type_name(task_type(self.args.task_type))
        self.asked = True
        console.rule("1. task type")
        return choose(TASK_TYPES, what="task type", flag="--task-type", default="classification")

    # -- 2. dataset and its preview
    def dataset(self, task_type: str):
        from trainyard.client import NotFoundError

        wanted = self.args.dataset
        if wanted:
            try:
                return self.ty.datasets.get(wanted)
            except NotFoundError:
                named = [d for d in self.ty.datasets.iter(task_type) if d.name == wanted]
                if len(named) == 1:
                    return named[0]
                # the service names what is wrong with the whole request at once (NOT_FOUND among it)
                from trainyard.dataset.v1 import dataset_pb2

                return dataset_pb2.Dataset(id=wanted, name=wanted)
        self.asked = True
        console.rule(f"2. dataset for {task_type}")
        fitting = self.ty.datasets.list(task_type)
        if not fitting:
            raise ValueError(
                f"no dataset of this project fits {task_type}; import one with `trainyard datasets import PATH --name N`"
            )
        while True:
            dataset = pick(
                fitting,
                what="dataset",
                flag="--dataset",
                title=f"datasets whose annotations fit {task_type}",
                columns=["name", "id", "cases", "classes", "created"],
                row=lambda d: [
                    d.name,
                    d.id,
                    d.latest_version.case_count,
                    ", ".join(c.name for c in d.latest_version.classes)[:50],
                    d.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M"),
                ],
                keys=lambda d: (d.id, d.name),
            )
            self.preview(dataset)
            if yes(f"train on {dataset.name}?", flag="--dataset"):
                return dataset

    def preview(self, dataset) -> Path | None:
        from trainyard.client import enum_name

        version = dataset.latest_version
        cases = self.ty.datasets.preview(dataset.id, count=8)
        counts = version.split_counts
        console.print(
            f"[bold]{escape(dataset.name)}[/] version {version.number}: {version.case_count} cases; "
            f"train {counts.train}, val {counts.val}, test {counts.test}"
        )
        _table("classes", ["class", "cases"], [[c.name, c.count] for c in version.classes])
        for case in cases:
            labels = ", ".join(sorted({a.class_name for a in case.annotations if a.class_name})) or "-"
            console.print(f"  {case.source_path}  [{enum_name(case, 'split')}] {labels}", markup=False)
        panels = [
            (
                c.preview_jpeg,
                f"{enum_name(c, 'split')}: {', '.join(sorted({a.class_name for a in c.annotations if a.class_name}))}",
            )
            for c in cases
        ]
        if not any(jpeg for jpeg, _ in panels):
            return None
        out = Path(self.args.preview_out or Path(tempfile.gettempdir()) / f"trainyard-preview-{dataset.id}.png")
        image_sheet(panels, out, columns=4)
        console.print(f"contact sheet of {len(cases)} cases with their annotations: {out}", markup=False)
        show_inline(out)
        return out

    # -- 3. model and tuning
    def model(self, task_type: str, dataset) -> dict[str, Any]:
        """How the model is chosen, as training.create keywords (model_id, suggestion, preset, data_type)."""
        a = self.args
        data_type = a.data_type or None
        if a.model:
            return {"model_id": a.model, "data_type": data_type}
        if a.retrain:
            return {"model_id": self._trained_id(a.retrain, task_type), "data_type": data_type}
        if a.preset:
            return {"preset": a.preset, "data_type": data_type}
        if a.suggestion:
            return {"suggestion": self._suggestion(task_type, dataset, int(a.suggestion)), "data_type": None}
        if a.auto:
            return {"auto": True, "data_type": data_type, "preference": a.preference}
        self.asked = True
        console.rule("3. model")
        presets = self.ty.models.presets(task_type)
        trained = self.ty.models.trained(task_type)
        available = {"general": -1, "specialized": len(presets), "retraining": len(trained)}
        while True:
            mode = choose(
                {m: text + ("" if available[m] else f" (none for {task_type} yet)") for m, text in MODES.items()},
                what="training mode",
                flag="--model, --auto, --suggestion, --preset or --retrain",
                default="general",
            )
            if available[mode]:
                break
            console.print(f"[red]no {mode} choice for {task_type} in this project[/]; try again")
        if mode == "specialized":
            return self._preset(presets)
        if mode == "retraining":
            chosen = pick(
                trained,
                what="trained model",
                flag="--retrain",
                title=f"this project's trained {task_type} models",
                columns=["name", "id", "network", "measured", "dataset", "created"],
                row=lambda m: [
                    m.name,
                    m.id,
                    m.variant,
                    _measured(m),
                    m.dataset_id,
                    m.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M"),
                ],
                keys=lambda m: (m.id, m.name, m.task_id),
            )
            return {"model_id": chosen.id, "data_type": data_type}
        how = choose(SELECTIONS, what="model selection", flag="--model, --auto or --suggestion", default="auto")
        if how == "auto":
            return {"suggestion": self._suggestion(task_type, dataset, 0), "data_type": None}
        return {"model_id": self._manual(task_type), "data_type": data_type}

    def _trained_id(self, wanted: str, task_type: str) -> str:
        """A trained model by its id, its task's id or its (task's) name."""
        if wanted.startswith("trained/"):
            return wanted
        matches = [m for m in self.ty.models.trained(task_type) if wanted in (m.task_id, m.name)]
        if len(matches) != 1:
            why = "no" if not matches else f"{len(matches)}"
            raise ValueError(f"--retrain {wanted}: {why} trained {task_type} model(s) of that name or task id")
        return matches[0].id

    def _preset(self, presets) -> dict[str, Any]:
        from trainyard.client import enum_name

        ready = {"in_store": "ready", "importable": "fetched first", "unavailable": "no weights source"}
        chosen = pick(
            presets,
            what="preset",
            flag="--preset",
            title="specialized presets (the network is fixed)",
            columns=["preset", "id", "network", "for", "weights"],
            row=lambda p: [
                p.name,
                p.id,
                p.model_id,
                enum_name(p, "data_type"),
                ready.get(enum_name(p, "weight_status"), "?"),
            ],
            keys=lambda p: (p.id, p.name),
        )
        console.print(escape(chosen.description))
        return {"preset": chosen.id, "data_type": None}

    def _suggestion(self, task_type: str, dataset, number: int):
        """The recommendation for this data (data type and preference asked unless given), the suggestions
        with their factors, and the one picked (number > 0: that one)."""
        a = self.args
        data_type, preference = a.data_type, a.preference
        if not number:
            if not data_type:
                data_type = choose(DATA_TYPES, what="data type", flag="--data-type", default="natural_photo")
            if not preference:
                preference = choose(PREFERENCES, what="preference", flag="--preference", default="balanced")
        response = self.ty.recommendation(
            task_type, dataset.id, data_type=data_type, preference=preference, max_suggestions=max(5, number)
        )
        suggestions = list(response.suggestions)
        if number:
            if not 1 <= number <= len(suggestions):
                raise ValueError(f"--suggestion {number}: there are {len(suggestions)} suggestion(s)")
            return suggestions[number - 1]
        for line in response.dataset_factors:
            console.print(f"  {line}", markup=False)
        _suggestions_table(suggestions)
        for s in suggestions:
            console.print(f"#{s.rank} {s.model_id}:", markup=False)
            for factor in s.factors:
                console.print(f"    - {factor}", markup=False)
        return pick(
            suggestions,
            what="suggestion",
            flag="--suggestion",
            columns=["model"],
            row=lambda s: [s.model_id],
            keys=lambda s: (s.model_id,),
            shown=True,
        )

    def _manual(self, task_type: str) -> str:
        """Family -> variant -> pre-trained weights, each a page at a time."""
        families = self.ty.models.families(task_type)
        while True:
            family = pick(
                families,
                what="family",
                flag="--model",
                title=f"model families for {task_type} ({len(families)})",
                columns=["family", "variants", "weights in store", "about"],
                row=lambda f: [f.name, f.variant_count, f.weights_in_store_count, f.description[:60]],
                keys=lambda f: (f.name,),
            )
            models = self.ty.models.list(task_type, family=family.name, origin="catalog")
            variants: dict[str, list] = {}
            for m in models:
                variants.setdefault(m.variant or m.architecture, []).append(m)
            names = list(variants)
            variant = pick(
                [*names, "(back to the families)"],
                what="variant",
                flag="--model",
                title=f"{family.name}: {len(names)} variant(s)",
                columns=["variant", "params (M)", "GFLOPs", "pre-trained weights"],
                row=lambda v, found=variants: [v, *_variant_row(found.get(v, []))],
                keys=lambda v: (v,),
            )
            if variant not in variants:
                continue
            options = variants[variant]
            model = pick(
                [*options, None],
                what="weights",
                flag="--model",
                title=f"{variant}: pre-trained weights",
                columns=["model id", "pre-trained on", "published", "weights"],
                row=lambda m: (
                    ["(back to the families)", "", "", ""]
                    if m is None
                    else [m.id, m.pretrain_dataset or "-", _published(m), _weights(m)]
                ),
                keys=lambda m: (m.id,) if m is not None else (),
            )
            if model is not None:
                return model.id

    def tune(self, selection: dict[str, Any], base: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """The task as it would train (validate_only) with every hyperparameter and the transfer strategy
        shown and editable; returns (create keywords, the plan)."""
        from trainyard.client import InvalidArgumentError, enum_name

        hp = dict(base["hyperparameters"])
        strategy = base["transfer_strategy"]
        plan = self._plan(selection, base, hp, strategy)
        if not self.asked:
            return {**base, "hyperparameters": hp, "transfer_strategy": strategy}, plan
        console.rule("3b. tuning")
        schema = {
            p.name: p for p in self.ty.training.hyperparameter_schema(plan.model_id, base["task_type"]).parameters
        }
        self.schema = schema
        _tuning_table(plan, schema)
        while True:
            change = ask(
                "change a value (NAME=VALUE), or press enter to keep these",
                flag="the hyperparameter flags (--epochs ...)",
                default="",
                parse=lambda text: _parse_change(text, schema),
            )
            if change is None:
                break
            name, value = change
            trial_hp, trial_strategy = dict(hp), strategy
            if name == "transfer_strategy":
                trial_strategy = value
            else:
                trial_hp[name] = value
            try:
                plan = self._plan(selection, base, trial_hp, trial_strategy)
            except InvalidArgumentError as exc:
                console.print(f"[red]{escape(exc.message)}[/]; not changed")
                continue
            hp, strategy = trial_hp, trial_strategy
            shown = enum_name(plan, "transfer_strategy") if name == "transfer_strategy" else _value(plan, name)
            console.print(f"  {name} = {shown}", markup=False)
        if base.get("search") is None and yes(
            "search hyperparameters instead of training once?", flag="--search", default=False
        ):
            base = {**base, "search": self._search(schema)}
        return {**base, "hyperparameters": hp, "transfer_strategy": strategy}, plan

    def _plan(self, selection, base, hp, strategy):
        keywords = {k: v for k, v in base.items() if k not in ("hyperparameters", "transfer_strategy", "search")}
        return self.ty.training.plan(
            **keywords, **selection, hyperparameters=hp or None, transfer_strategy=strategy, search=base.get("search")
        )

    def _search(self, schema) -> Any:
        from trainyard.client import hyperparameter_search

        method = choose(
            {"tpe": "guided by the results so far", "random": "independent samples", "grid": "every combination"},
            what="search method",
            flag="--search",
            default="tpe",
        )
        trials = ask("trials in all", flag="--trials", default="10", parse=_int_in(1, 1000))
        parallel = ask("trials at the same time", flag="--parallel", default="1", parse=_int_in(1, 64))
        space = [p for p in schema.values() if p.default_search.name]
        console.print(
            "default search space: "
            + "; ".join(f"{p.name} {_range_text(p.default_search)}" for p in space)
            + "  (NAME, NAME=LOW:HIGH[:log] or NAME=A,B; comma-free specs separated by spaces)",
            markup=False,
        )
        params = ask(
            "searched hyperparameters (enter for the default space)", flag="--param", default="", parse=_search_specs
        )
        return hyperparameter_search(method, params, max_trials=trials, parallelism=parallel)

    # -- 4. name, description, summary, start
    def name(self, dataset, plan) -> tuple[str, str]:
        a = self.args
        default = _default_name(dataset.name, plan)
        if a.name:
            return a.name, a.description or ""
        self.asked = True
        console.rule("4. name")

        def check(text: str) -> str:
            from kernel.fields import name_violation

            why = name_violation(text)
            if why is not None:
                raise Again(f"name: {why}")
            return text

        name = ask("task name", flag="--name", default=default, parse=check)
        description = a.description
        if description is None:
            description = ask("description (optional)", flag="--description", default="")
        return name, description


def run(ty, args: argparse.Namespace) -> int:
    """The wizard, or the flags' one-shot equivalent."""
    from trainyard.client import make_hyperparameters

    w = Wizard(ty, args)
    task_type = w.task_type()
    dataset = w.dataset(task_type)
    if args.dataset and w.asked is False and args.preview_out:
        w.preview(dataset)
    selection = w.model(task_type, dataset)
    if args.from_scratch:
        selection["from_scratch"] = True
    elif w.asked and not selection.get("auto"):
        selection = _scratch_if_needed(ty, selection)
    base = {
        "name": _default_name(dataset.name, None) if not args.name else args.name,
        "task_type": task_type,
        "dataset_id": dataset.id,
        "dataset_version_id": args.dataset_version or "",
        "hyperparameters": hyperparameter_flags(args),
        "transfer_strategy": args.transfer_strategy,
        "resources": {"processes_per_node": args.processes_per_node or 0, "nodes": args.nodes or 0}
        if args.processes_per_node or args.nodes
        else None,
        "search": search_flags(args),
    }
    if selection.get("preference") and not selection.get("auto"):
        selection.pop("preference")
    make_hyperparameters(**base["hyperparameters"])  # a bad flag value fails before anything is asked
    keywords, plan = w.tune(selection, base)
    name, description = w.name(dataset, plan)
    keywords.update(name=name, description=description)
    if w.asked:
        _summary(dataset, plan, keywords, selection, w.schema)
        if not args.yes and not yes(f"start {name}?", flag="--yes"):
            console.print("not started")
            return 1
    chosen = selection.get("model_id") or (plan.model_id if selection.get("suggestion") is not None else "")
    if chosen and not selection.get("from_scratch"):
        _pull_first(ty, chosen)  # with a progress bar, before the task exists
    task = ty.training.create(**keywords, **selection)
    if args.output == "json" and not args.watch:
        from trainyard.cli.common import _json

        _json(task)
        return 0
    console.print(
        f"[green]started[/] task [bold]{escape(task.name)}[/] ({task.id}) with model {escape(task.model_id or 'auto')}"
    )
    watch = args.watch or (w.asked and yes("watch it now?", flag="--watch"))
    if not watch:
        console.print(f"  follow it: [bold]trainyard train watch {task.id}[/]")
        return 0
    code = _watch(ty, task.id, args.output)
    if code == 0 and args.output != "json":
        _next_steps(task)
    return code


def _scratch_if_needed(ty, selection: dict[str, Any]) -> dict[str, Any]:
    """A model without pre-trained weights trains from scratch only when the user says so."""
    from trainyard.modelzoo.v1 import modelzoo_pb2

    if selection.get("preset"):
        preset = ty.models.preset(selection["preset"])
        status, model_id = preset.weight_status, preset.weights_model_id or preset.model_id
    elif selection.get("suggestion") is not None:
        model = ty.models.get(selection["suggestion"].model_id)
        status, model_id = model.weight_status, model.backbone_model_id or model.id
    else:
        model = ty.models.get(selection["model_id"])
        status, model_id = model.weight_status, model.backbone_model_id or model.id
    if status != modelzoo_pb2.WEIGHT_STATUS_UNAVAILABLE:
        return selection
    console.print(
        f"no pre-trained weights of {model_id} are in the store and no configured source has them "
        f"(`trainyard models import FILE --model {model_id}` uploads them)",
        markup=False,
    )
    if not yes("train from scratch (random initial weights) instead?", flag="--from-scratch", default=False):
        raise ValueError("not started: no pre-trained weights; upload them, or pass --from-scratch")
    return {**selection, "from_scratch": True}


def _summary(dataset, plan, keywords: dict[str, Any], selection: dict[str, Any], schema: dict) -> None:
    from trainyard.client import enum_name

    console.rule("summary")
    how = {"general": "general", "specialized": "specialized", "retraining": "retraining"}
    mode = how.get(enum_name(plan, "mode"), "general")
    rows = [
        ["name", keywords["name"]],
        ["description", keywords.get("description") or "-"],
        ["task type", keywords["task_type"]],
        ["dataset", f"{dataset.name} ({dataset.id}, version {dataset.latest_version.number})"],
        ["mode", mode],
        ["model", plan.model_id],
        ["data type", enum_name(plan, "data_type")],
    ]
    if plan.HasField("suggestion"):
        s = plan.suggestion
        rows.append(["suggestion", f"#{s.rank} of the {enum_name(s, 'preference')} ranking, score {s.score:.2f}"])
    if plan.preset_id:
        rows.append(["preset", plan.preset_id])
    rows.append(["transfer strategy", enum_name(plan, "transfer_strategy")])
    changed = set(keywords.get("hyperparameters") or {})
    for field in plan.hyperparameters.DESCRIPTOR.fields:
        rows.append([field.name + (" *" if field.name in changed else ""), _value(plan, field.name, schema)])
    if keywords.get("search") is not None:
        from trainyard.client import short_name
        from trainyard.training.v1 import training_pb2

        s = keywords["search"]
        method = short_name(training_pb2.SearchMethod.Name(s.method), "SEARCH_METHOD_") if s.method else "tpe"
        rows.append(["search", f"{method}, {s.max_trials or 10} trials, {s.parallelism or 1} at a time"])
    if keywords.get("from_scratch") or selection.get("from_scratch"):
        rows.append(["weights", "from scratch (asked for)"])
    _table("the task (* changed from the recipe)", ["setting", "value"], rows)


def _next_steps(task) -> None:
    console.print("next:", markup=False)
    for line in (
        f"trainyard train show {task.id}            # metrics, per-class evaluation, confusion matrix",
        f"trainyard eval cases {task.id} --out cases.png   # the worst cases, drawn",
        f"trainyard eval label-errors {task.id}     # suspected label errors",
        f"trainyard predict trained/{task.id} IMAGE...  # try it on new images",
        f"trainyard train download {task.id} --out model/  # the exported model",
    ):
        console.print(f"  {line}", markup=False)


# -- flags -----------------------------------------------------------------------------------------
def add_flags(p: argparse.ArgumentParser) -> None:
    """Every wizard answer as a flag, every hyperparameter included (from the Hyperparameters message)."""
    from google.protobuf.descriptor import FieldDescriptor

    from trainyard.client import _prefix, short_name
    from trainyard.common.v1 import common_pb2

    p.add_argument("--task-type", help=", ".join(TASK_TYPES))
    p.add_argument("--dataset", help="dataset id or name")
    p.add_argument("--dataset-version", help="dataset version id (default: the latest)")
    p.add_argument("--preview-out", help="where to write the preview contact sheet (default: the temp folder)")
    how = p.add_argument_group("model (one of)")
    how.add_argument("--model", help="a zoo model id (general, manual select)")
    how.add_argument("--suggestion", type=int, metavar="N", help="suggestion #N for --data-type and --preference")
    how.add_argument("--auto", action="store_true", help="let the platform take its top suggestion")
    how.add_argument("--preset", help="a specialized preset id")
    how.add_argument("--retrain", metavar="MODEL", help="a trained model of the project: trained/<task id> or a name")
    p.add_argument("--data-type", help=", ".join(DATA_TYPES))
    p.add_argument("--preference", help=", ".join(PREFERENCES))
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument("--transfer-strategy", help=", ".join(STRATEGIES))
    p.add_argument(
        "--from-scratch",
        action="store_true",
        help="train from random weights (never done silently: a model without weights is refused otherwise)",
    )
    hp = p.add_argument_group("hyperparameters (default: the recipe for the model on the dataset)")
    types = {FieldDescriptor.TYPE_DOUBLE: float, FieldDescriptor.TYPE_FLOAT: float, FieldDescriptor.TYPE_STRING: str}
    for field in common_pb2.Hyperparameters.DESCRIPTOR.fields:
        flag = "--" + field.name.replace("_", "-")
        if field.enum_type is not None:
            prefix = _prefix(field.enum_type)
            choices = [short_name(v.name, prefix) for v in field.enum_type.values if v.number]
            hp.add_argument(flag, dest=field.name, choices=choices)
        else:
            kind = types.get(field.type, int)
            hp.add_argument(flag, dest=field.name, type=kind, metavar="NAME" if kind is str else "N")
    p.add_argument(
        "--processes-per-node", type=int, help="data-parallel processes on each trainer (one GPU each on CUDA)"
    )
    p.add_argument("--nodes", type=int, help="trainers that train the task together (multi-node)")
    p.add_argument("--yes", "-y", action="store_true", help="start without the final question")
    p.add_argument("--watch", action="store_true", help="follow the task to its end")
    p.add_argument("--search", metavar="METHOD", help="search hyperparameters instead: random, tpe or grid")
    p.add_argument(
        "--param",
        action="append",
        metavar="SPEC",
        help="searched hyperparameter: NAME (default range), NAME=LOW:HIGH[:log|:step=S] or NAME=A,B,C; repeatable",
    )
    p.add_argument("--trials", type=int, help="search: trials in all (default 10)")
    p.add_argument("--parallel", type=int, help="search: trials at the same time (default 1)")
    p.add_argument("--max-minutes", type=float, help="search: time budget")
    p.add_argument("--objective", help="search: metric to optimise (default the task type's primary metric)")
    p.add_argument("--prune", help="search: none, median or asha")
    p.add_argument("--prune-warmup", type=int, help="search: epochs before a trial may be pruned")


def hyperparameter_flags(args: argparse.Namespace) -> dict[str, Any]:
    from trainyard.common.v1 import common_pb2

    out = {}
    for field in common_pb2.Hyperparameters.DESCRIPTOR.fields:
        value = getattr(args, field.name, None)
        if value is not None:
            out[field.name] = value
    return out


def search_flags(args: argparse.Namespace):
    """The --search flags as a HyperparameterSearch, or None."""
    from trainyard.client import hyperparameter_search

    if not getattr(args, "search", None):
        return None
    return hyperparameter_search(
        args.search,
        args.param or [],
        max_trials=args.trials or 0,
        parallelism=args.parallel or 0,
        max_duration_seconds=int((args.max_minutes or 0) * 60),
        objective_metric=args.objective or "",
        pruning=args.prune,
        warmup_epochs=args.prune_warmup or 0,
    )


# -- showing ---------------------------------------------------------------------------------------
def show_inline(path: Path) -> bool:
    """Show a PNG in the terminal where it can (kitty's graphics protocol; iTerm2's inline images, also
    WezTerm's); False elsewhere (the path is printed either way)."""
    if not sys.stdout.isatty():
        return False
    term, program = os.environ.get("TERM", ""), os.environ.get("TERM_PROGRAM", "")
    data = base64.b64encode(path.read_bytes()).decode()
    if term == "xterm-kitty" or os.environ.get("KITTY_WINDOW_ID"):
        chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)] or [""]
        for i, chunk in enumerate(chunks):
            head = "a=T,f=100," if i == 0 else ""
            sys.stdout.write(f"\033_G{head}m={1 if i < len(chunks) - 1 else 0};{chunk}\033\\")
        sys.stdout.write("\n")
    elif program in ("iTerm.app", "WezTerm") or os.environ.get("LC_TERMINAL") == "iTerm2":
        size = path.stat().st_size
        sys.stdout.write(f"\033]1337;File=inline=1;size={size};preserveAspectRatio=1:{data}\a\n")
    else:
        return False
    sys.stdout.flush()
    return True


def _suggestions_table(suggestions) -> None:
    from trainyard.client import enum_name

    rows = []
    for s in suggestions:
        hp = s.hyperparameters
        rows.append(
            [
                s.rank,
                s.model_id,
                f"{s.score:.2f}",
                enum_name(s, "transfer_strategy"),
                f"{hp.epochs} ep, {hp.image_size} px, batch {hp.batch_size}",
                _duration(s.expected_training_seconds),
                f"{s.quality_metric} {s.expected_quality_low:.2f}-{s.expected_quality_high:.2f}",
            ]
        )
    _table("suggestions", ["#", "model", "score", "strategy", "recipe", "time", "expected"], rows)


def _tuning_table(plan, schema) -> None:
    from trainyard.client import enum_name

    rows = [
        [
            "transfer_strategy",
            enum_name(plan, "transfer_strategy"),
            ", ".join(STRATEGIES),
            "how the pre-trained weights are used",
        ]
    ]
    for field in plan.hyperparameters.DESCRIPTOR.fields:
        spec = schema.get(field.name)
        valid = ""
        if spec is not None:
            if spec.choices:
                valid = ", ".join(spec.choices)
            else:
                valid = f"{'(' if spec.minimum_exclusive else '['}{_number(spec.minimum)}, {_number(spec.maximum)}]"
        rows.append([field.name, _value(plan, field.name, schema), valid, spec.description if spec is not None else ""])
    _table(
        "the task would train with (the recipe for this model on this dataset)",
        ["name", "value", "valid", "what"],
        rows,
    )


def _value(task, name: str, schema: dict | None = None) -> str:
    """A hyperparameter of a resolved task as text; a value left to the trainer's default says which."""
    from trainyard.client import enum_name

    hp = task.hyperparameters
    field = hp.DESCRIPTOR.fields_by_name[name]
    spec = (schema or {}).get(name)
    value = getattr(hp, name)
    if field.enum_type is not None and value:
        return enum_name(hp, name)
    if value in ("", 0) and spec is not None and spec.default_choice:
        return f"{spec.default_choice} (default)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _parse_change(text: str, schema) -> tuple[str, Any] | None:
    """'NAME=VALUE' checked against the hyperparameter's schema (or the transfer strategies); None for
    an empty answer."""
    if not text:
        return None
    name, sep, raw = text.partition("=")
    name, raw = name.strip().replace("-", "_"), raw.strip()
    if not sep or not raw:
        raise Again(f"{text!r}: write NAME=VALUE, for example epochs=5")
    if name == "transfer_strategy":
        if raw not in STRATEGIES:
            raise Again(f"transfer_strategy must be one of {', '.join(STRATEGIES)}")
        return name, raw
    spec = schema.get(name)
    if spec is None:
        return name, _typed(name, raw, schema)
    if spec.choices:
        if raw not in spec.choices:
            raise Again(f"{name} must be one of {', '.join(spec.choices)}")
        return name, raw
    try:
        number = float(raw)
    except ValueError:
        raise Again(f"{name} takes a number, not {raw!r}") from None
    low_ok = number > spec.minimum if spec.minimum_exclusive else number >= spec.minimum
    if not low_ok or number > spec.maximum:
        bracket = "(" if spec.minimum_exclusive else "["
        raise Again(f"{name} must be in {bracket}{spec.minimum:g}, {spec.maximum:g}]")
    from trainyard.training.v1 import training_pb2

    if spec.kind == training_pb2.HYPERPARAMETER_KIND_INT:
        if not number.is_integer():
            raise Again(f"{name} takes a whole number, not {raw}")
        return name, int(number)
    return name, number


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _search_specs(text: str) -> list:
    """Searched hyperparameters as SearchParameter messages from space-separated specs; a spec that does
    not read asks again."""
    from trainyard.client import InvalidArgumentError, search_parameter

    try:
        return [search_parameter(spec) for spec in text.split()]
    except InvalidArgumentError as exc:
        raise Again(exc.message) from None


def _typed(name: str, raw: str, schema) -> Any:
    """A value of a Hyperparameters field the schema does not describe (yet), by its type; the service
    checks its range when the task is planned again."""
    from google.protobuf.descriptor import FieldDescriptor

    from trainyard.common.v1 import common_pb2

    field = common_pb2.Hyperparameters.DESCRIPTOR.fields_by_name.get(name)
    if field is None:
        raise Again(f"no hyperparameter {name!r}; one of transfer_strategy, {', '.join(schema)}")
    if field.enum_type is not None or field.type == FieldDescriptor.TYPE_STRING:
        return raw
    try:
        return float(raw) if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT) else int(raw)
    except ValueError:
        raise Again(f"{name} takes a number, not {raw!r}") from None


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.isdigit() or not low <= int(text) <= high:
            raise Again(f"give a whole number in {low}..{high}")
        return int(text)

    return parse


def _range_text(p) -> str:
    if p.choices:
        return ",".join(p.choices)
    return f"{p.low:g}:{p.high:g}{':log' if p.log else ''}"


def _default_name(dataset_name: str, plan) -> str:
    model = ""
    if plan is not None:
        model = plan.preset_id.removeprefix("preset/") or plan.model_id.split("/")[-1].split(".")[0]
        if plan.model_id.startswith("trained/"):
            model = "retrain"
    name = f"{dataset_name}-{model}" if model else dataset_name
    return name[:128].strip()


def _measured(model) -> str:
    for metric in ("val_top1", "val_map", "val_miou", "val_mask_map"):
        if metric in model.metrics:
            return f"{metric} {model.metrics[metric]:.3f}"
    return "-"


def _published(model) -> str:
    for metric in model.reference_metrics:
        if metric.name in ("top1", "acc@1", "map", "box_map", "miou"):
            return f"{metric.name} {metric.value:g}"
    return "-"


def _weights(model) -> str:
    from trainyard.client import enum_name

    return {"in_store": "in store", "importable": "fetched first", "unavailable": "none (from scratch only)"}.get(
        enum_name(model, "weight_status"), "?"
    )


def _variant_row(models) -> list:
    if not models:
        return ["", "", ""]
    m = models[0]
    tags = ", ".join(f"{x.pretrain_dataset or '-'} ({_weights(x)})" for x in models)
    return [f"{m.num_params / 1e6:.1f}", f"{m.gflops:.2f}", tags[:70]]
