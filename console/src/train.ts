// The general training page: four steps in order (task type; dataset; model and tuning; name and start).
import { create, fromJson, type JsonObject } from "@bufbuild/protobuf";
import { HyperparametersSchema, TaskType, TaskTypeSchema, DataType, DataTypeSchema, TrainingPreference, TrainingPreferenceSchema, SplitSchema } from "../../clients/typescript/gen/trainyard/common/v1/common_pb.js";
import type { Dataset } from "../../clients/typescript/gen/trainyard/dataset/v1/dataset_pb.js";
import { type Model, type Preset, WeightStatus, WeightStatusSchema } from "../../clients/typescript/gen/trainyard/modelzoo/v1/modelzoo_pb.js";
import type { Suggestion } from "../../clients/typescript/gen/trainyard/recommend/v1/recommend_pb.js";
import { HyperparameterKind, type HyperparameterSpec, SearchMethod, HyperparameterSearchSchema } from "../../clients/typescript/gen/trainyard/training/v1/training_pb.js";
import { CreateTrainingTaskRequestSchema } from "../../clients/typescript/gen/trainyard/training/v1/training_service_pb.js";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "../../clients/typescript/gen/google/rpc/error_details_pb.js";
import { datasets, describe, enumName, fieldErrors, recommend, training, zoo } from "./api.js";
import { clear, fmtNumber, fmtParams, fmtSeconds, h, jpegUrl } from "./dom.js";

const TASK_TYPES: [TaskType, string, string][] = [
  [TaskType.CLASSIFICATION, "Image classification", "One label per image: which class the whole picture shows."],
  [TaskType.DETECTION, "Object detection", "Boxes around each object, with its class."],
  [TaskType.SEGMENTATION, "Semantic segmentation", "A class for every pixel (road, sky, tissue…)."],
  [TaskType.INSTANCE_SEGMENTATION, "Instance segmentation", "A mask and a class for each separate object."],
];
type Mode = "general" | "specialized" | "retraining";
type Selection = "auto" | "manual";

interface State {
  taskType?: TaskType;
  dataset?: Dataset;
  mode: Mode;
  selection: Selection;
  dataType: DataType;
  preference: TrainingPreference;
  suggestion?: Suggestion;
  modelId?: string;
  preset?: Preset;
  schema: HyperparameterSpec[];
}

export function renderTrain(main: HTMLElement): () => void {
  const state: State = { mode: "general", selection: "auto", dataType: DataType.NATURAL_PHOTO, preference: TrainingPreference.BALANCED, schema: [] };
  const urls: string[] = [];
  const step = (n: number, title: string) => {
    const body = h("div", { class: "step-body" });
    const section = h("section", { class: "step", id: `step-${n}`, "aria-labelledby": `step-${n}-title` }, h("h2", { id: `step-${n}-title` }, h("span", { class: "num" }, String(n)), title), body);
    return { section, body };
  };
  const s1 = step(1, "Task type");
  const s2 = step(2, "Dataset");
  const s3 = step(3, "Model and tuning");
  const s4 = step(4, "Name and start");
  clear(main, h("h1", {}, "General training"), s1.section, s2.section, s3.section, s4.section);
  const preselect = new URLSearchParams(location.hash.split("?")[1] ?? "").get("dataset") ?? "";

  // -- step 1 -------------------------------------------------------------------------------------------
  const typeGroup = h("div", { class: "choices", role: "radiogroup", "aria-label": "Task type" },
    TASK_TYPES.map(([value, label, help]) =>
      h("label", { class: "choice" },
        h("input", { type: "radio", name: "task-type", value, "data-testid": `task-type-${value}`, onchange: () => chooseTaskType(value) }),
        h("span", { class: "choice-title" }, label),
        h("span", { class: "help" }, help))));
  clear(s1.body, typeGroup);
  clear(s2.body, h("p", { class: "muted" }, "Choose a task type first."));
  clear(s3.body, h("p", { class: "muted" }, "Choose a dataset first."));
  clear(s4.body, h("p", { class: "muted" }, "Choose a model first."));

  async function chooseTaskType(value: TaskType): Promise<void> {
    state.taskType = value;
    state.dataset = undefined;
    resetModel();
    clear(s2.body, h("p", {}, "Loading datasets…"));
    clear(s3.body, h("p", { class: "muted" }, "Choose a dataset first."));
    try {
      const list = await datasets.listDatasets({ taskType: value, pageSize: 500 });
      if (state.taskType !== value) return;
      const select = h("select", { id: "dataset", "aria-describedby": "dataset-help" },
        h("option", { value: "" }, list.datasets.length ? "Choose a dataset…" : "No dataset fits this task type"),
        list.datasets.map((d) => h("option", { value: d.id }, `${d.name} (${d.latestVersion?.caseCount ?? 0} cases)`)));
      const detail = h("div", { id: "dataset-detail" });
      select.addEventListener("change", () => chooseDataset(list.datasets.find((d) => d.id === select.value), detail));
      clear(s2.body,
        h("label", { for: "dataset" }, "Dataset"), select,
        h("p", { id: "dataset-help", class: "help" }, "Only datasets whose annotations fit the task type are listed. ", h("a", { href: "#/upload" }, "Upload one")),
        detail);
      if (preselect && list.datasets.some((d) => d.id === preselect)) {
        select.value = preselect;
        void chooseDataset(list.datasets.find((d) => d.id === preselect), detail);
      }
    } catch (err) {
      clear(s2.body, h("p", { class: "error", role: "alert" }, describe(err)));
    }
  }

  // -- step 2 -------------------------------------------------------------------------------------------
  async function chooseDataset(dataset: Dataset | undefined, detail: HTMLElement): Promise<void> {
    state.dataset = dataset;
    resetModel();
    if (!dataset) {
      clear(detail);
      clear(s3.body, h("p", { class: "muted" }, "Choose a dataset first."));
      return;
    }
    const version = dataset.latestVersion;
    const splits = version?.splitCounts;
    const warnings = version?.importWarnings ?? [];
    const grid = h("div", { class: "preview-grid", id: "preview-grid", "aria-busy": "true" }, h("p", {}, "Loading the case preview…"));
    clear(detail,
      h("div", { class: "facts" },
        h("div", {}, h("h3", {}, "Classes"),
          h("table", { class: "grid-table", id: "class-counts" }, h("thead", {}, h("tr", {}, h("th", {}, "Class"), h("th", { class: "num" }, "Annotations"))),
            h("tbody", {}, (version?.classes ?? []).map((c) => h("tr", {}, h("td", {}, c.name), h("td", { class: "num" }, c.count)))))),
        h("div", {}, h("h3", {}, "Splits"),
          h("table", { class: "grid-table", id: "split-counts" }, h("tbody", {},
            h("tr", {}, h("th", {}, "train"), h("td", { class: "num" }, splits?.train ?? 0)),
            h("tr", {}, h("th", {}, "val"), h("td", { class: "num" }, splits?.val ?? 0)),
            h("tr", {}, h("th", {}, "test"), h("td", { class: "num" }, splits?.test ?? 0))))),
        h("div", {}, h("h3", {}, "Warnings"),
          warnings.length ? h("ul", { class: "warnings", id: "dataset-warnings" }, warnings.map((w) => h("li", {}, w))) : h("p", { class: "muted", id: "dataset-warnings" }, "None."))),
      h("h3", {}, "Case preview"), grid);
    renderModelStep();
    try {
      const preview = await datasets.previewCases({ datasetId: dataset.id, count: 12, thumbnailSize: 160, seed: 1n });
      if (state.dataset !== dataset) return;
      clear(grid, preview.cases.map((c) => {
        const url = jpegUrl(c.previewJpeg);
        urls.push(url);
        const labels = [...new Set(c.annotations.map((a) => a.className))].join(", ");
        return h("figure", { class: "case" }, h("img", { src: url, alt: `${c.sourcePath}: ${labels}`, width: 160, loading: "lazy" }),
          h("figcaption", {}, h("span", { class: "tag" }, enumName(SplitSchema, c.split)), " ", labels));
      }));
      if (preview.legend.length > 1 || state.taskType !== TaskType.CLASSIFICATION) {
        grid.after(h("p", { class: "legend" }, preview.legend.map((l) => h("span", { class: "legend-item" }, h("span", { class: "swatch", style: `background:${l.colour}` }), l.className))));
      }
      grid.removeAttribute("aria-busy");
    } catch (err) {
      clear(grid, h("p", { class: "error" }, describe(err)));
    }
  }

  // -- step 3 -------------------------------------------------------------------------------------------
  const picked = h("div", { id: "tuning" });
  const modeBody = h("div", { id: "mode-body" });

  function resetModel(): void {
    state.suggestion = undefined;
    state.modelId = undefined;
    state.preset = undefined;
    state.schema = [];
    clear(picked);
    renderStart();
  }

  function renderModelStep(): void {
    const modes: [Mode, string, string][] = [
      ["general", "General training", "Pick a network from the zoo, or let trainyard suggest one."],
      ["specialized", "Specialized training", "A preset for a kind of data; the network is fixed."],
      ["retraining", "Existing-model retraining", "Train one of this project's models further; the network is fixed."],
    ];
    clear(s3.body,
      h("div", { class: "choices tabs", role: "radiogroup", "aria-label": "Training mode" },
        modes.map(([value, label, help]) => h("label", { class: "choice" },
          h("input", { type: "radio", name: "mode", value, "data-testid": `mode-${value}`, checked: state.mode === value, onchange: () => { state.mode = value; resetModel(); renderMode(); } }),
          h("span", { class: "choice-title" }, label), h("span", { class: "help" }, help)))),
      modeBody, picked);
    renderMode();
  }

  function renderMode(): void {
    if (state.mode === "general") renderGeneral();
    else if (state.mode === "specialized") void renderPresets();
    else void renderTrained();
  }

  function renderGeneral(): void {
    const body = h("div", {});
    clear(modeBody,
      h("div", { class: "choices compact", role: "radiogroup", "aria-label": "Model selection" },
        (["auto", "manual"] as Selection[]).map((value) => h("label", { class: "choice" },
          h("input", { type: "radio", name: "selection", value, "data-testid": `select-${value}`, checked: state.selection === value, onchange: () => { state.selection = value; resetModel(); renderGeneral(); } }),
          h("span", { class: "choice-title" }, value === "auto" ? "Auto select" : "Manual select")))),
      body);
    if (state.selection === "auto") renderAuto(body);
    else void renderFamilies(body);
  }

  function enumSelect(id: string, schema: typeof DataTypeSchema | typeof TrainingPreferenceSchema, value: number, onChange: (v: number) => void): HTMLSelectElement {
    const select = h("select", { id }, schema.values.filter((v) => v.number !== 0).map((v) => h("option", { value: v.number }, enumName(schema, v.number))));
    select.value = String(value);
    select.addEventListener("change", () => onChange(Number(select.value)));
    return select;
  }

  function renderAuto(body: HTMLElement): void {
    const list = h("div", { id: "suggestions" });
    const go = h("button", { type: "button", id: "suggest" }, "Suggest models");
    go.addEventListener("click", async () => {
      clear(list, h("p", {}, "Ranking models for this dataset…"));
      try {
        const answer = await recommend.recommend({ taskType: state.taskType, datasetId: state.dataset?.id, dataType: state.dataType, preference: state.preference, maxSuggestions: 5 });
        clear(list,
          answer.datasetFactors.length ? h("p", { class: "help" }, "About the data: ", answer.datasetFactors.join("; ")) : null,
          h("ol", { class: "ranked" }, answer.suggestions.map((s, i) => h("li", {},
            h("label", { class: "choice wide" },
              h("input", { type: "radio", name: "suggestion", value: s.modelId, "data-testid": `suggestion-${i}`, onchange: () => { state.suggestion = s; void chooseModel(s.modelId); } }),
              h("span", { class: "choice-title" }, `${i + 1}. ${s.modelId}`, h("span", { class: "score" }, ` score ${fmtNumber(s.score, 2)}`)),
              h("span", { class: "help" }, `expected ${fmtSeconds(s.expectedTrainingSeconds)} to train · ${s.qualityMetric || "quality"} ${fmtNumber(s.expectedQualityLow, 2)}–${fmtNumber(s.expectedQualityHigh, 2)}`),
              h("ul", { class: "factors" }, s.factors.map((f) => h("li", {}, f))))))));
        list.querySelector("input")?.focus();
      } catch (err) {
        clear(list, h("p", { class: "error", role: "alert" }, describe(err)));
      }
    });
    clear(body,
      h("div", { class: "row" },
        h("div", {}, h("label", { for: "data-type" }, "Data type"), enumSelect("data-type", DataTypeSchema, state.dataType, (v) => { state.dataType = v; })),
        h("div", {}, h("label", { for: "preference" }, "Training preference"), enumSelect("preference", TrainingPreferenceSchema, state.preference, (v) => { state.preference = v; })),
        h("div", { class: "row-end" }, go)),
      list);
  }

  function weights(model: Model): string {
    return model.weightStatus === WeightStatus.IN_STORE ? "in the store" : enumName(WeightStatusSchema, model.weightStatus);
  }

  function referenceMetric(model: Model): string {
    const m = model.referenceMetrics[0];
    return m ? `${m.name} ${fmtNumber(m.value, 3)}${m.dataset ? ` (${m.dataset})` : ""}` : "–";
  }

  async function renderFamilies(body: HTMLElement): Promise<void> {
    clear(body, h("p", {}, "Loading model families…"));
    try {
      const answer = await zoo.listModelFamilies({ taskType: state.taskType, pageSize: 1000 });
      clear(body, h("div", { id: "families", class: "families" }, answer.families.map((f) => {
        const variants = h("div", { class: "variants" }, h("p", {}, "Loading…"));
        const details = h("details", { class: "family", "data-family": f.name }, h("summary", {}, h("strong", {}, f.name), ` · ${f.variantCount} variants · ${f.weightsInStoreCount} with weights in the store`, h("span", { class: "help block" }, f.description)), variants);
        details.addEventListener("toggle", async () => {
          if (!details.open || variants.dataset.loaded) return;
          variants.dataset.loaded = "1";
          try {
            const models = await zoo.listModels({ taskType: state.taskType, family: f.name, pageSize: 1000, origin: "catalog" });
            clear(variants, h("table", { class: "grid-table variants-table" },
              h("thead", {}, h("tr", {}, h("th", {}, "Choose"), h("th", {}, "Variant and weights"), h("th", { class: "num" }, "Params"), h("th", { class: "num" }, "GFLOPs"), h("th", {}, "Reference metric"), h("th", {}, "Weights"))),
              h("tbody", {}, models.models.map((m) => h("tr", {},
                h("td", {}, h("input", { type: "radio", name: "manual-model", value: m.id, id: `m-${m.id}`, "aria-label": m.id, onchange: () => void chooseModel(m.id) })),
                h("td", {}, h("label", { for: `m-${m.id}` }, m.variant, h("span", { class: "help block" }, m.pretrainDataset ? `${m.pretrainDataset} ${m.pretrainTag}` : "no pre-trained weights"))),
                h("td", { class: "num" }, fmtParams(m.numParams)),
                h("td", { class: "num" }, fmtNumber(m.gflops, 3)),
                h("td", {}, referenceMetric(m)),
                h("td", {}, weights(m)))))));
          } catch (err) {
            clear(variants, h("p", { class: "error" }, describe(err)));
          }
        });
        return details;
      })));
    } catch (err) {
      clear(body, h("p", { class: "error", role: "alert" }, describe(err)));
    }
  }

  async function renderPresets(): Promise<void> {
    clear(modeBody, h("p", {}, "Loading presets…"));
    try {
      const answer = await zoo.listPresets({ taskType: state.taskType, pageSize: 1000 });
      clear(modeBody, answer.presets.length ? h("div", { class: "choices column", role: "radiogroup", "aria-label": "Preset", id: "presets" }, answer.presets.map((p) =>
        h("label", { class: "choice wide" },
          h("input", { type: "radio", name: "preset", value: p.id, onchange: () => { state.preset = p; void chooseModel(p.modelId); } }),
          h("span", { class: "choice-title" }, p.name),
          h("span", { class: "help" }, p.description),
          h("span", { class: "help" }, `network ${p.modelId} · input ${p.inputSize} px · weights ${enumName(WeightStatusSchema, p.weightStatus)}`))))
        : h("p", { class: "muted" }, "No preset for this task type."));
    } catch (err) {
      clear(modeBody, h("p", { class: "error", role: "alert" }, describe(err)));
    }
  }

  async function renderTrained(): Promise<void> {
    clear(modeBody, h("p", {}, "Loading the project's models…"));
    try {
      const answer = await zoo.listModels({ taskType: state.taskType, origin: "trained", pageSize: 1000 });
      clear(modeBody, answer.models.length ? h("div", { class: "choices column", role: "radiogroup", "aria-label": "Trained model", id: "trained-models" }, answer.models.map((m) =>
        h("label", { class: "choice wide" },
          h("input", { type: "radio", name: "trained", value: m.id, onchange: () => void chooseModel(m.id) }),
          h("span", { class: "choice-title" }, m.name || m.id),
          h("span", { class: "help" }, `${m.id} · from ${m.baseModelId || m.architecture} · classes ${m.classNames.join(", ")}`),
          h("span", { class: "help" }, Object.entries(m.metrics).map(([k, v]) => `${k} ${fmtNumber(v, 3)}`).join(" · ")))))
        : h("p", { class: "muted" }, "This project has no trained model of this task type yet."));
    } catch (err) {
      clear(modeBody, h("p", { class: "error", role: "alert" }, describe(err)));
    }
  }

  async function chooseModel(modelId: string): Promise<void> {
    state.modelId = modelId;
    clear(picked, h("p", {}, "Loading the tuning options…"));
    try {
      const schema = await training.getHyperparameterSchema({ modelId, taskType: state.taskType });
      if (state.modelId !== modelId) return;
      state.schema = schema.parameters;
      renderTuning(schema.objectiveMetrics, schema.defaultObjectiveMetric);
    } catch (err) {
      clear(picked, h("p", { class: "error", role: "alert" }, describe(err)));
    }
    renderStart();
  }

  function specDefault(spec: HyperparameterSpec): string {
    if (spec.kind === HyperparameterKind.CHOICE) return spec.defaultChoice;
    if (state.preset?.hyperparameters) {
      const value = (state.preset.hyperparameters as unknown as Record<string, unknown>)[camel(spec.name)];
      if (typeof value === "number" && value !== 0) return String(value);
    }
    return String(spec.defaultNumber);
  }

  function renderTuning(objectives: string[], objective: string): void {
    const fields = state.schema.map((spec) => {
      const id = `hp-${spec.name}`;
      const help = `${spec.description}${spec.kind === HyperparameterKind.CHOICE ? "" : ` Range ${spec.minimumExclusive ? "(" : "["}${fmtNumber(spec.minimum)}, ${fmtNumber(spec.maximum)}].`}`;
      const input = spec.kind === HyperparameterKind.CHOICE
        ? h("select", { id, name: spec.name, "data-default": spec.defaultChoice, "aria-describedby": `${id}-help ${id}-error` }, spec.choices.map((c) => h("option", { value: c }, c || "(task's primary metric)")))
        : h("input", { id, name: spec.name, type: "number", step: "any", "data-default": specDefault(spec), "aria-describedby": `${id}-help ${id}-error`, inputmode: "decimal" });
      input.value = specDefault(spec);
      return h("div", { class: "field" }, h("label", { for: id }, spec.name.replaceAll("_", " ")), input,
        h("p", { class: "help", id: `${id}-help` }, help), h("p", { class: "field-error", id: `${id}-error`, role: "alert" }));
    });
    const searchable = state.schema.filter((s) => s.searchable);
    const searchBox = h("input", { type: "checkbox", id: "search-on" });
    const searchBody = h("div", { id: "search-body", hidden: true },
      h("div", { class: "row" },
        h("div", {}, h("label", { for: "search-method" }, "Method"), h("select", { id: "search-method" }, h("option", { value: SearchMethod.TPE }, "TPE (Optuna)"), h("option", { value: SearchMethod.RANDOM }, "random"), h("option", { value: SearchMethod.GRID }, "grid"))),
        h("div", {}, h("label", { for: "search-trials" }, "Trials"), h("input", { id: "search-trials", type: "number", min: 1, max: 1000, value: 6 })),
        h("div", {}, h("label", { for: "search-objective" }, "Objective"), (() => { const s = h("select", { id: "search-objective" }, objectives.map((o) => h("option", { value: o }, o))); s.value = objective; return s; })())),
      h("fieldset", {}, h("legend", {}, "Parameters searched (their default ranges)"),
        searchable.map((s) => h("label", { class: "inline" }, h("input", { type: "checkbox", name: "search-param", value: s.name, checked: !!s.defaultSearch?.name }), ` ${s.name}`, h("span", { class: "help" }, s.defaultSearch?.name ? ` ${rangeText(s)}` : "")))),
      h("p", { class: "field-error", id: "search-error", role: "alert" }));
    searchBox.addEventListener("change", () => { searchBody.hidden = !searchBox.checked; });
    clear(picked,
      h("h3", {}, "Tuning"),
      h("p", { class: "help" }, `For ${state.modelId}. Defaults are the model's; change only what you need.`),
      h("div", { class: "fields", id: "hp-form" }, fields),
      h("label", { class: "inline" }, searchBox, " Search hyperparameters instead of training once"),
      searchBody);
  }

  function rangeText(spec: HyperparameterSpec): string {
    const r = spec.defaultSearch;
    if (!r) return "";
    return r.choices.length ? `{${r.choices.join(", ")}}` : `${fmtNumber(r.low)}…${fmtNumber(r.high)}${r.log ? " log" : ""}`;
  }

  // -- step 4 -------------------------------------------------------------------------------------------
  function renderStart(): void {
    if (!state.modelId) {
      clear(s4.body, h("p", { class: "muted" }, "Choose a model first."));
      return;
    }
    const name = h("input", { id: "task-name", type: "text", required: true, maxlength: 128, "aria-describedby": "task-name-error" });
    const description = h("textarea", { id: "task-description", rows: 2, maxlength: 4096 });
    const summary = h("dl", { class: "summary", id: "summary" });
    const error = h("div", { id: "start-error", role: "alert" });
    const start = h("button", { type: "submit", id: "start" }, "Start training");
    const form = h("form", {},
      h("label", { for: "task-name" }, "Task name"), name, h("p", { class: "field-error", id: "task-name-error" }),
      h("label", { for: "task-description" }, "Description (optional)"), description,
      h("h3", {}, "Summary"), summary, error, start);
    const refresh = () => clear(summary, summaryRows().flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
    refresh();
    picked.addEventListener("change", refresh);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      start.disabled = true;
      clear(error);
      for (const el of main.querySelectorAll(".field-error")) el.textContent = "";
      try {
        const created = await training.createTrainingTask(buildRequest(name.value.trim(), description.value));
        location.hash = `#/tasks/${created.task?.id}`;
      } catch (err) {
        showErrors(err, error);
      } finally {
        start.disabled = false;
      }
    });
    clear(s4.body, form);
  }

  function summaryRows(): [string, string][] {
    const rows: [string, string][] = [
      ["Task type", TASK_TYPES.find(([v]) => v === state.taskType)?.[1] ?? ""],
      ["Dataset", state.dataset ? `${state.dataset.name} (version ${state.dataset.latestVersion?.number ?? 1})` : ""],
      ["Mode", { general: "General training", specialized: "Specialized training", retraining: "Existing-model retraining" }[state.mode]],
    ];
    if (state.mode === "general" && state.selection === "auto") rows.push(["Selection", `auto: ${enumName(DataTypeSchema, state.dataType)}, ${enumName(TrainingPreferenceSchema, state.preference)}`]);
    if (state.preset) rows.push(["Preset", state.preset.name]);
    rows.push(["Model", state.modelId ?? ""]);
    const changed = Object.entries(changedHyperparameters()).map(([k, v]) => `${k} ${v}`);
    rows.push(["Tuning", changed.length ? changed.join(", ") : "the model's defaults"]);
    const search = main.querySelector<HTMLInputElement>("#search-on");
    if (search?.checked) rows.push(["Search", `${main.querySelector<HTMLInputElement>("#search-trials")?.value} trials`]);
    return rows;
  }

  function changedHyperparameters(): Record<string, string> {
    const changed: Record<string, string> = {};
    for (const el of main.querySelectorAll<HTMLInputElement | HTMLSelectElement>("#hp-form [name]")) {
      if (el.value !== el.dataset.default) changed[el.name] = el.value;
    }
    return changed;
  }

  function buildRequest(name: string, description: string) {
    const hp: JsonObject = {};
    for (const [field, text] of Object.entries(changedHyperparameters())) {
      const spec = state.schema.find((s) => s.name === field);
      const desc = HyperparametersSchema.fields.find((f) => f.name === field);
      if (!spec || !desc) continue;
      if (desc.fieldKind === "enum") {
        const value = desc.enum.values.find((v) => v.localName.toLowerCase() === text);
        hp[field] = value ? value.name : text;
      } else if (spec.kind === HyperparameterKind.CHOICE) {
        hp[field] = text;
      } else if (text.trim() !== "") {
        hp[field] = Number(text);
      }
    }
    let hyperparameters;
    try {
      hyperparameters = fromJson(HyperparametersSchema, hp);
    } catch (err) {
      // A value the message cannot hold at all (2.5 epochs): said at the field before anything is sent.
      const field = Object.keys(hp).find((k) => String(err).includes(k)) ?? "";
      throw new ConnectError(`hyperparameters.${field}: ${String(err)}`, Code.InvalidArgument, undefined, [
        { desc: BadRequestSchema, value: { fieldViolations: [{ field: `hyperparameters.${field}`, description: "not a value this field can hold" }] } },
      ]);
    }
    const request = create(CreateTrainingTaskRequestSchema, {
      name,
      description,
      taskType: state.taskType,
      datasetId: state.dataset?.id,
      hyperparameters,
      requestId: crypto.randomUUID(),
    });
    if (state.mode === "specialized" && state.preset) request.modelSelection = { case: "presetId", value: state.preset.id };
    else if (state.mode === "general" && state.selection === "auto" && state.suggestion) {
      request.modelSelection = { case: "modelId", value: state.suggestion.modelId };
      request.transferStrategy = state.suggestion.transferStrategy;
    } else request.modelSelection = { case: "modelId", value: state.modelId ?? "" };
    if (main.querySelector<HTMLInputElement>("#search-on")?.checked) {
      const params = [...main.querySelectorAll<HTMLInputElement>("[name=search-param]:checked")].map((el) => el.value);
      request.search = create(HyperparameterSearchSchema, {
        method: Number(main.querySelector<HTMLSelectElement>("#search-method")?.value) as SearchMethod,
        maxTrials: Number(main.querySelector<HTMLInputElement>("#search-trials")?.value),
        objectiveMetric: main.querySelector<HTMLSelectElement>("#search-objective")?.value ?? "",
        parameters: params.map((p) => state.schema.find((s) => s.name === p)?.defaultSearch ?? { name: p }),
      });
    }
    return request;
  }

  function showErrors(err: unknown, banner: HTMLElement): void {
    const violations = fieldErrors(err);
    const unplaced: string[] = [];
    for (const [field, text] of violations) {
      const leaf = field.split(".").at(-1) ?? field;
      const target = field === "name" ? main.querySelector("#task-name-error")
        : field.startsWith("hyperparameters.") ? main.querySelector(`#hp-${leaf}-error`)
        : field.startsWith("search") ? main.querySelector("#search-error") : null;
      if (target) target.textContent = text;
      else unplaced.push(`${field}: ${text}`);
    }
    const first = main.querySelector<HTMLElement>(".field-error:not(:empty)");
    const input = first?.id ? main.querySelector<HTMLElement>(`#${first.id.replace(/-error$/, "")}`) : null;
    input?.focus();
    clear(banner, h("p", { class: "error" }, describe(err)), unplaced.length ? h("ul", {}, unplaced.map((u) => h("li", {}, u))) : null);
  }

  return () => urls.forEach((u) => URL.revokeObjectURL(u));
}

function camel(name: string): string {
  return name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}
