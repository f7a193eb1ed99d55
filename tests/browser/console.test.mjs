// The console in a real headless Chromium (Debian's, driven by playwright-core): sign in, upload a dataset
// with progress, walk the four steps in each of the three modes to a SUCCEEDED task, and see the server's
// field error at the field for a bad hyperparameter. Screenshots of every step go to TRAINYARD_SCREENSHOTS.
// Run by tests/console/test_console_browser.py, which starts the platform and sets the variables below.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

const url = process.env.TRAINYARD_HTTP_URL;
const token = process.env.TRAINYARD_TOKEN;
const shots = process.env.TRAINYARD_SCREENSHOTS;
const archive = process.env.TRAINYARD_ARCHIVE;
const TRAIN_TIMEOUT = 240_000;
let browser, page, datasetId, firstTaskId;

async function shot(name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.TRAINYARD_CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(30_000);
  page.on("pageerror", (err) => console.error("page error:", err));
  // Nothing but the gateway's own origin is ever asked for.
  page.on("request", (req) => assert.ok(req.url().startsWith(url) || req.url().startsWith("blob:") || req.url().startsWith("data:"), req.url()));
});

after(async () => {
  await browser?.close();
});

test("sign in with an API key, kept for the session", async () => {
  const loaded = Date.now();
  await page.goto(url);
  await page.locator("#token").waitFor();
  await shot("00-sign-in");
  await page.fill("#token", "ty_wrong_0123456789abcdef0123");
  await page.click("button[type=submit]");
  await page.locator(".signin [role=alert]", { hasText: "Unauthenticated" }).waitFor();
  await page.fill("#token", token);
  await page.keyboard.press("Enter");
  await page.locator("[data-testid=task-type-1]").waitFor();
  console.log(`first load to the task-type step: ${Date.now() - loaded} ms`);
  assert.equal(await page.evaluate(() => sessionStorage.getItem("trainyard.token")), token);
});

test("upload a dataset with progress", async () => {
  await page.goto(`${url}/#/upload`);
  await page.setInputFiles("#up-file", archive);
  await page.fill("#up-name", "browser-shapes");
  await page.click("form button[type=submit]");
  await page.locator("#up-status", { hasText: "Imported browser-shapes" }).waitFor({ timeout: 60_000 });
  await shot("01-upload-done");
  const href = await page.locator("#up-report a").getAttribute("href");
  datasetId = new URLSearchParams(href.split("?")[1]).get("dataset");
  assert.ok(datasetId);
  // The same name again: refused, and the error says so.
  await page.click("form button[type=submit]");
  await page.locator("#up-status", { hasText: "Import failed" }).waitFor({ timeout: 60_000 });
  await shot("01-upload-refused");
});

async function walk(mode, choose, name) {
  await page.goto(`${url}/#/train`);
  await page.locator("[data-testid=task-type-1]").check();
  await shot(`${name}-1-task-type`);
  await page.selectOption("#dataset", datasetId);
  await page.locator("#preview-grid img").first().waitFor();
  assert.ok((await page.locator("#class-counts tbody tr").count()) >= 2);
  await shot(`${name}-2-dataset`);
  await page.locator(`[data-testid=mode-${mode}]`).check();
  await choose();
  await page.locator("#hp-epochs").waitFor();
  await page.fill("#hp-epochs", "1");
  await page.fill("#hp-image_size", "32");
  await page.fill("#hp-batch_size", "8");
  await shot(`${name}-3-model-and-tuning`);
  await page.fill("#task-name", `browser-${name}`);
  await page.fill("#task-description", `walked in Chromium: ${name}`);
  await page.locator("#summary").click();
  await shot(`${name}-4-start`);
  await page.click("#start");
  await page.waitForURL(/#\/tasks\/[^/]+$/);
  const taskId = decodeURIComponent(page.url().split("#/tasks/")[1]);
  await page.locator("h1 [data-state=succeeded]").waitFor({ timeout: TRAIN_TIMEOUT });
  await page.locator("#epoch-table tbody tr").first().waitFor();
  await page.locator("#confusion").waitFor();
  await shot(`${name}-5-task-succeeded`);
  return taskId;
}

test("general training, auto select: ranked suggestions", async () => {
  firstTaskId = await walk("general", async () => {
    await page.locator("[data-testid=select-auto]").check();
    await page.selectOption("#preference", { label: "fastest" });
    await page.click("#suggest");
    await page.locator("[data-testid=suggestion-0]").waitFor();
    assert.ok((await page.locator("#suggestions .factors li").count()) > 0);
    // The first suggestion whose weights the store has (only MobileNetV2's are installed here).
    await page.locator("#suggestions input[value='tv/mobilenet_v2.imagenet1k_v1']").check();
  }, "general-auto");
});

test("general training, manual select: a family expands into variants", async () => {
  await walk("general", async () => {
    await page.locator("[data-testid=select-manual]").check();
    const family = page.locator("details[data-family='mobilenet_v2']");
    await family.locator("summary").click();
    await family.locator("input[value='tv/mobilenet_v2.imagenet1k_v1']").check();
  }, "general-manual");
});

test("specialized training: a preset, the network fixed", async () => {
  await walk("specialized", async () => {
    await page.locator("#presets input[value='preset/industrial-defect-classification']").check();
    assert.equal(await page.locator("#data-type").count(), 0);
  }, "specialized");
});

test("existing-model retraining: the project's trained model", async () => {
  await walk("retraining", async () => {
    await page.locator(`#trained-models input[value='trained/${firstTaskId}']`).check();
  }, "retraining");
});

test("a bad hyperparameter shows the server's field error at the field", async () => {
  await page.goto(`${url}/#/train`);
  await page.locator("[data-testid=task-type-1]").check();
  await page.selectOption("#dataset", datasetId);
  await page.locator("[data-testid=select-manual]").check();
  const family = page.locator("details[data-family='mobilenet_v2']");
  await family.locator("summary").click();
  await family.locator("input[value='tv/mobilenet_v2.imagenet1k_v1']").check();
  await page.fill("#hp-learning_rate", "-1");
  await page.fill("#task-name", "browser-bad");
  await page.click("#start");
  const error = page.locator("#hp-learning_rate-error");
  await error.filter({ hasText: /./ }).waitFor();
  assert.match(await error.textContent(), /./);
  assert.equal(await page.evaluate(() => document.activeElement?.id), "hp-learning_rate");
  await shot("bad-hyperparameter");
});

test("task list, and a narrow window", async () => {
  await page.goto(`${url}/#/tasks`);
  await page.locator("#task-list tbody tr").first().waitFor();
  assert.ok((await page.locator("#task-list [data-state=succeeded]").count()) >= 4);
  await shot("tasks-1280");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${url}/#/train`);
  await page.locator("[data-testid=task-type-1]").waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `page wider than the window by ${overflow} px`);
  await shot("train-narrow");
  // Keyboard: the skip link, then the navigation, then (from the main region) the task types by Tab alone.
  await page.focus(".skip");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), "New training");
  await page.focus("#main");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("name")), "task-type");
  await page.keyboard.press("Space");
  await page.locator("#dataset").waitFor();
});
