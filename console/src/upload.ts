// Upload a dataset archive with progress; a refused import lists its files and reasons.
import { datasets, describe, errorInfo, fieldErrors, uploadDataset } from "./api.js";
import { clear, h } from "./dom.js";

export function renderUpload(main: HTMLElement): () => void {
  const file = h("input", { id: "up-file", type: "file", accept: ".zip,.tar,.tgz,.tar.gz,.gz", required: true });
  const name = h("input", { id: "up-name", type: "text", required: true, maxlength: 128 });
  const description = h("textarea", { id: "up-description", rows: 2, maxlength: 4096 });
  const val = h("input", { id: "up-val", type: "number", min: 0, max: 0.9, step: 0.05, value: 0.2 });
  const bar = h("progress", { id: "up-progress", max: 1, value: 0, hidden: true });
  const status = h("p", { id: "up-status", role: "status" });
  const report = h("div", { id: "up-report" });
  const submit = h("button", { type: "submit" }, "Upload");
  file.addEventListener("change", () => {
    const chosen = file.files?.[0];
    if (chosen && !name.value) name.value = chosen.name.replace(/\.(zip|tar|tgz|tar\.gz|gz)$/i, "");
  });
  const form = h(
    "form",
    { class: "card" },
    h("h1", {}, "Upload a dataset"),
    h("p", { class: "help" }, "A zip or tar archive as downloaded: class folders, COCO, VOC, YOLO, mask folders… the layout is detected."),
    h("label", { for: "up-file" }, "Archive"), file,
    h("label", { for: "up-name" }, "Name"), name, h("p", { class: "field-error", id: "up-name-error" }),
    h("label", { for: "up-description" }, "Description (optional)"), description,
    h("label", { for: "up-val" }, "Validation fraction when the archive has no splits"), val,
    submit, bar, status, report,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = file.files?.[0];
    if (!chosen) return;
    submit.disabled = true;
    bar.hidden = false;
    clear(report);
    (document.getElementById("up-name-error") as HTMLElement).textContent = "";
    status.textContent = "Uploading…";
    try {
      const created = await uploadDataset(
        chosen,
        { name: name.value.trim(), description: description.value, valFraction: Number(val.value) },
        (sent, total) => {
          bar.value = total ? sent / total : 0;
          status.textContent = sent < total ? `Uploading… ${Math.round((100 * sent) / total)}%` : "Importing…";
        },
      );
      const ds = created.dataset;
      status.textContent = `Imported ${ds?.name}: ${ds?.latestVersion?.caseCount ?? 0} cases.`;
      clear(report, h("a", { href: `#/train?dataset=${ds?.id}` }, "Train with it"));
    } catch (err) {
      status.textContent = `Import failed. ${describe(err)}`;
      const violations = fieldErrors(err);
      const nameError = violations.get("metadata.name") ?? violations.get("name");
      if (nameError) (document.getElementById("up-name-error") as HTMLElement).textContent = nameError;
      const rows: [string, string][] = [...violations].filter(([field]) => !field.endsWith("name"));
      const importId = errorInfo(err).import_id;
      if (importId) {
        try {
          const full = await datasets.getImportReport({ importId, pageSize: 500 });
          rows.push(...full.rejectedFiles.map((f): [string, string] => [f.path, f.reason]));
        } catch {
          // the error's own violations are shown
        }
      }
      if (rows.length) {
        clear(
          report,
          h("h2", {}, "Files refused"),
          h("table", { class: "grid-table" }, h("thead", {}, h("tr", {}, h("th", {}, "File"), h("th", {}, "Reason"))),
            h("tbody", {}, rows.map(([path, reason]) => h("tr", {}, h("td", {}, path), h("td", {}, reason))))),
        );
      }
    } finally {
      submit.disabled = false;
    }
  });
  clear(main, form);
  return () => {};
}
