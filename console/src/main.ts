// The console: sign in with an API key, then the training page, the task list and pages, and uploads.
import { auth, describe, isUnauthenticated, setToken, token } from "./api.js";
import { clear, h } from "./dom.js";
import { renderTask, renderTasks } from "./tasks.js";
import { renderTrain } from "./train.js";
import { renderUpload } from "./upload.js";

const main = document.getElementById("main") as HTMLElement;
const who = document.getElementById("who") as HTMLElement;
let stopPage: (() => void) | undefined;

function signIn(message = ""): void {
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true, "aria-describedby": "token-help" });
  const error = h("p", { class: "field-error", role: "alert" }, message);
  const form = h(
    "form",
    { class: "card signin" },
    h("h1", {}, "Sign in"),
    h("label", { for: "token" }, "API key"),
    input,
    h("p", { id: "token-help", class: "help" }, "A key of your project (trainyard auth token, or trainyard keys create). It is kept for this browser tab only."),
    error,
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    try {
      await auth.whoAmI({});
      await route();
    } catch (err) {
      setToken("");
      error.textContent = describe(err);
      input.focus();
    }
  });
  clear(main, form);
  clear(who);
  input.focus();
}

async function route(): Promise<void> {
  stopPage?.();
  stopPage = undefined;
  if (!token()) return signIn();
  let identity;
  try {
    identity = await auth.whoAmI({});
  } catch (err) {
    setToken("");
    return signIn(isUnauthenticated(err) ? "The key was refused; sign in again." : describe(err));
  }
  const key = identity.key;
  clear(
    who,
    `${key?.project ?? ""} · ${key?.name ?? key?.id ?? ""}`,
    " ",
    h("button", { type: "button", class: "link", onclick: () => { setToken(""); location.hash = "#/train"; signIn(); } }, "Sign out"),
  );
  const path = location.hash.replace(/^#/, "") || "/train";
  for (const link of document.querySelectorAll("nav a")) {
    link.toggleAttribute("aria-current", path.startsWith((link.getAttribute("href") ?? "").slice(1)));
  }
  const task = path.match(/^\/tasks\/([^/]+)$/);
  if (task) stopPage = renderTask(main, decodeURIComponent(task[1]));
  else if (path.startsWith("/tasks")) stopPage = renderTasks(main);
  else if (path.startsWith("/upload")) stopPage = renderUpload(main);
  else stopPage = renderTrain(main);
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", () => void route());
void route();
