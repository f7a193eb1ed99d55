// The task list, and a task's page: live curves from the watch stream, the epoch table, cancel and continue,
// downloads, and the evaluation with its confusion matrix and worst cases.
import { TaskTypeSchema } from "../../clients/typescript/gen/trainyard/common/v1/common_pb.js";
import { type TrainingTask, TaskState, TaskStateSchema } from "../../clients/typescript/gen/trainyard/training/v1/training_pb.js";
import { describe, enumName, training } from "./api.js";
import { clear, fmtNumber, fmtSeconds, h, jpegUrl } from "./dom.js";

const FINISHED = new Set([TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED]);

function stateTag(state: TaskState): HTMLElement {
  const name = enumName(TaskStateSchema, state);
  return h("span", { class: `state state-${name}`, "data-state": name }, name);
}

export function renderTasks(main: HTMLElement): () => void {
  const body = h("div", {}, h("p", {}, "Loading tasks…"));
  clear(main, h("h1", {}, "Training tasks"), body);
  let timer = 0;
  const load = async () => {
    try {
      const answer = await training.listTrainingTasks({ pageSize: 100 });
      clear(body, answer.tasks.length
        ? h("table", { class: "grid-table", id: "task-list" },
            h("thead", {}, h("tr", {}, h("th", {}, "Task"), h("th", {}, "Type"), h("th", {}, "Model"), h("th", {}, "State"), h("th", {}, "Progress"), h("th", {}, "Created"))),
            h("tbody", {}, answer.tasks.map((t) => h("tr", {},
              h("td", {}, h("a", { href: `#/tasks/${t.id}` }, t.name)),
              h("td", {}, enumName(TaskTypeSchema, t.taskType)),
              h("td", {}, t.modelId),
              h("td", {}, stateTag(t.state)),
              h("td", {}, t.progress ? `epoch ${t.progress.epoch}/${t.progress.totalEpochs}` : ""),
              h("td", {}, t.createTime ? new Date(Number(t.createTime.seconds) * 1000).toLocaleString() : "")))))
        : h("p", {}, "No task yet. ", h("a", { href: "#/train" }, "Start one")));
      if (answer.tasks.some((t) => !FINISHED.has(t.state))) timer = window.setTimeout(load, 3000);
    } catch (err) {
      clear(body, h("p", { class: "error", role: "alert" }, describe(err)));
    }
  };
  void load();
  return () => window.clearTimeout(timer);
}

export function renderTask(main: HTMLElement, taskId: string): () => void {
  const abort = new AbortController();
  const urls: string[] = [];
  const head = h("div", { class: "task-head" });
  const controls = h("div", { class: "row", id: "task-controls" });
  const progress = h("p", { id: "task-progress", role: "status" });
  const canvas = h("canvas", { id: "curves", width: 720, height: 260, role: "img", "aria-label": "Training curves" });
  const legend = h("p", { class: "legend", id: "curves-legend" });
  const epochs = h("div", { id: "epochs" });
  const downloads = h("div", { id: "downloads" });
  const evaluation = h("div", { id: "evaluation" });
  const log = h("ol", { class: "log", id: "task-log", "aria-live": "off" });
  clear(main, head, controls, progress,
    h("section", { class: "card" }, h("h2", {}, "Curves"), canvas, legend),
    h("section", { class: "card" }, h("h2", {}, "Epochs"), epochs),
    h("section", { class: "card" }, h("h2", {}, "Downloads"), downloads),
    h("section", { class: "card" }, h("h2", {}, "Evaluation"), evaluation),
    h("section", { class: "card" }, h("h2", {}, "Log"), log));
  const history = new Map<number, Record<string, number>>();
  let task: TrainingTask | undefined;

  const show = (t: TrainingTask) => {
    task = t;
    for (const e of t.epochMetrics) history.set(e.epoch, { ...e.values });
    clear(head, h("h1", {}, t.name, " ", stateTag(t.state)),
      h("p", { class: "help" }, `${t.id} · ${enumName(TaskTypeSchema, t.taskType)} · ${t.modelId} · dataset ${t.datasetId}`),
      t.description ? h("p", {}, t.description) : null,
      t.failureReason ? h("p", { class: "error", role: "alert" }, t.failureReason) : null,
      t.selectionRationale ? h("p", { class: "help" }, t.selectionRationale) : null);
    renderControls(t);
    drawCurves();
    if (FINISHED.has(t.state)) {
      progress.textContent = `${enumName(TaskStateSchema, t.state)}. ${Object.entries(t.metrics).map(([k, v]) => `${k} ${fmtNumber(v)}`).join(" · ")}`;
      void renderDownloads(t);
      void renderEvaluation(t);
    }
  };

  const renderControls = (t: TrainingTask) => {
    const extra = h("input", { type: "number", id: "more-epochs", min: 1, max: 1000, value: 2, "aria-label": "Epochs to add" });
    clear(controls,
      !FINISHED.has(t.state) ? h("button", { type: "button", id: "cancel", onclick: async () => {
        try { show((await training.cancelTrainingTask({ taskId: t.id })).task as TrainingTask); } catch (err) { progress.textContent = describe(err); }
      } }, "Cancel") : null,
      FINISHED.has(t.state) ? [extra, h("button", { type: "button", id: "continue", onclick: async () => {
        try { show((await training.continueTrainingTask({ taskId: t.id, additionalEpochs: Number(extra.value) })).task as TrainingTask); void watch(); } catch (err) { progress.textContent = describe(err); }
      } }, "Continue training")] : null);
  };

  const drawCurves = () => {
    const rows = [...history.entries()].sort((a, b) => a[0] - b[0]);
    const names = [...new Set(rows.flatMap(([, v]) => Object.keys(v)))].sort();
    clear(epochs, rows.length ? h("table", { class: "grid-table", id: "epoch-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "Epoch"), names.map((n) => h("th", { class: "num" }, n)))),
      h("tbody", {}, rows.map(([epoch, v]) => h("tr", {}, h("td", {}, epoch), names.map((n) => h("td", { class: "num" }, n in v ? fmtNumber(v[n], 4) : "")))))) : h("p", { class: "muted" }, "No epoch finished yet."));
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    const width = canvas.width, height = canvas.height, pad = 36;
    ctx.clearRect(0, 0, width, height);
    ctx.strokeStyle = "#999";
    ctx.strokeRect(pad, 8, width - pad - 8, height - pad - 8);
    const colors = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7ea4", "#57606a"];
    const maxEpoch = Math.max(1, ...rows.map(([e]) => e));
    const legendItems: HTMLElement[] = [];
    names.forEach((name, i) => {
      const points = rows.filter(([, v]) => name in v).map(([e, v]) => [e, v[name]] as const);
      if (!points.length) return;
      // Losses on their own scale from the top value; metrics in [0, 1] unless they go beyond.
      const values = points.map(([, y]) => y);
      const hi = Math.max(1, ...values), lo = Math.min(0, ...values);
      ctx.strokeStyle = colors[i % colors.length];
      ctx.fillStyle = colors[i % colors.length];
      ctx.lineWidth = 2;
      ctx.beginPath();
      points.forEach(([e, y], j) => {
        const x = pad + ((width - pad - 8) * e) / maxEpoch;
        const yy = 8 + (height - pad - 8) * (1 - (y - lo) / (hi - lo || 1));
        if (j === 0) ctx.moveTo(x, yy); else ctx.lineTo(x, yy);
        ctx.fillRect(x - 2, yy - 2, 4, 4);
      });
      ctx.stroke();
      legendItems.push(h("span", { class: "legend-item" }, h("span", { class: "swatch", style: `background:${colors[i % colors.length]}` }), `${name} (max ${fmtNumber(hi)})`));
    });
    ctx.fillStyle = "#555";
    ctx.font = "12px sans-serif";
    ctx.fillText("epoch", width / 2, height - 8);
    ctx.fillText(String(maxEpoch), width - 20, height - 20);
    clear(legend, legendItems);
  };

  const renderDownloads = async (t: TrainingTask) => {
    if (!t.artifacts.length) return clear(downloads, h("p", { class: "muted" }, "No artifact."));
    clear(downloads, h("ul", { class: "downloads" }, t.artifacts.map((a) => {
      const button = h("button", { type: "button", class: "link", "data-artifact": a.name }, `${a.name} (${fmtBytes(Number(a.object?.sizeBytes ?? 0))})`);
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          const parts: BlobPart[] = [];
          for await (const chunk of training.readTaskArtifact({ taskId: t.id, name: a.name }, { signal: abort.signal })) parts.push(chunk.chunk as BlobPart);
          const url = URL.createObjectURL(new Blob(parts));
          urls.push(url);
          const link = h("a", { href: url, download: a.name.split("/").at(-1) ?? a.name }, "save");
          button.after(" ", link);
          link.click();
        } catch (err) {
          button.after(` ${describe(err)}`);
        } finally {
          button.disabled = false;
        }
      });
      return h("li", {}, button);
    })));
  };

  const renderEvaluation = async (t: TrainingTask) => {
    const ev = t.evaluation;
    if (!ev) return clear(evaluation, h("p", { class: "muted" }, "No evaluation for this task."));
    const cm = ev.confusionMatrix;
    const cols = cm?.columnLabels ?? [];
    const cells = (cm?.counts ?? []).map(Number);
    const peak = Math.max(1, ...cells);
    const worst = h("div", { class: "preview-grid", id: "worst-cases" }, h("p", {}, "Loading the worst cases…"));
    clear(evaluation,
      h("p", {}, h("strong", {}, `${ev.headlineMetric} ${fmtNumber(ev.headlineValue, 3)}`), ` on ${ev.caseCount} cases (${ev.splitNote || "test split"}), ${ev.errorCaseCount} with errors`),
      cm ? h("table", { class: "grid-table confusion", id: "confusion" },
        h("caption", {}, `Confusion matrix (rows: truth, columns: prediction${cm.unit ? `; ${cm.unit}` : ""})`),
        h("thead", {}, h("tr", {}, h("th", {}, ""), cols.map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, cm.rowLabels.map((r, i) => h("tr", {}, h("th", { scope: "row" }, r), cols.map((_, j) => {
          const n = cells[i * cols.length + j] ?? 0;
          return h("td", { class: "num", style: `background:rgba(31,111,235,${(0.6 * n) / peak})` }, n);
        }))))) : null,
      h("table", { class: "grid-table" }, h("thead", {}, h("tr", {}, h("th", {}, "Class"), h("th", { class: "num" }, "Precision"), h("th", { class: "num" }, "Recall"), h("th", { class: "num" }, "F1"), h("th", { class: "num" }, "Support"))),
        h("tbody", {}, ev.classes.map((c) => h("tr", {}, h("td", {}, c.name), h("td", { class: "num" }, fmtNumber(c.precision)), h("td", { class: "num" }, fmtNumber(c.recall)), h("td", { class: "num" }, fmtNumber(c.f1)), h("td", { class: "num" }, String(c.support)))))),
      h("h3", {}, "Worst cases"), worst);
    if (!t.evaluationId) return clear(worst, h("p", { class: "muted" }, "No per-case results."));
    try {
      const cases = await training.listEvaluationCases({ evaluationId: t.evaluationId, pageSize: 8, includePreviews: true, thumbnailSize: 160 });
      clear(worst, cases.cases.length ? cases.cases.map((c) => {
        const url = jpegUrl(c.previewJpeg);
        urls.push(url);
        return h("figure", { class: "case" }, h("img", { src: url, alt: c.summary || c.sourcePath, width: 160 }), h("figcaption", {}, c.summary || c.sourcePath));
      }) : h("p", { class: "muted" }, "No error case."));
    } catch (err) {
      clear(worst, h("p", { class: "error" }, describe(err)));
    }
  };

  let lastSequence = 0n;
  const watch = async () => {
    try {
      for await (const answer of training.watchTrainingTask({ taskId, fromStart: lastSequence === 0n, afterSequence: lastSequence }, { signal: abort.signal })) {
        const event = answer.event;
        if (!event) continue;
        lastSequence = event.sequence > lastSequence ? event.sequence : lastSequence;
        const e = event.event;
        if (e.case === "task") show(e.value);
        else if (e.case === "epochMetrics") { history.set(e.value.epoch, { ...e.value.values }); drawCurves(); }
        else if (e.case === "progress") {
          const p = e.value;
          progress.textContent = `Epoch ${p.epoch}/${p.totalEpochs} · step ${p.step}/${p.totalSteps} · ${fmtNumber(p.imagesPerSecond)} img/s · ${fmtSeconds(p.etaSeconds)} left`;
        } else if (e.case === "log") log.append(h("li", {}, e.value));
      }
      const final = await training.getTrainingTask({ taskId });
      if (final.task) show(final.task);
    } catch (err) {
      if (!abort.signal.aborted) progress.textContent = `The live view stopped: ${describe(err)}`;
    }
  };
  void (async () => {
    try {
      const first = await training.getTrainingTask({ taskId });
      if (first.task) show(first.task);
      if (first.task && !FINISHED.has(first.task.state)) await watch();
    } catch (err) {
      clear(head, h("h1", {}, "Task"), h("p", { class: "error", role: "alert" }, describe(err)));
    }
  })();
  return () => {
    abort.abort();
    urls.forEach((u) => URL.revokeObjectURL(u));
    void task;
  };
}

function fmtBytes(n: number): string {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(0)} KiB`;
  return `${n} B`;
}
