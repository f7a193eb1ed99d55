// The console's first load in headless Chromium: navigation to the task-type step shown, signed in (the key in
// session storage before the page runs), each load in a fresh browser context (empty cache). The baseline is a
// blank page (the server's 404 text) loaded the same way. Prints one JSON line.
import { chromium } from "playwright-core";

const url = process.env.TRAINYARD_HTTP_URL;
const loads = Number(process.env.LOADS || 5);
const browser = await chromium.launch({
  executablePath: process.env.TRAINYARD_CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const out = { task_type_step_ms: [], blank_page_ms: [], bytes: 0 };
try {
  for (let i = 0; i < loads; i++) {
    for (const side of i % 2 ? ["blank", "console"] : ["console", "blank"]) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.addInitScript((token) => sessionStorage.setItem("trainyard.token", token), process.env.TRAINYARD_TOKEN);
      const page = await context.newPage();
      let bytes = 0;
      page.on("response", async (r) => { try { bytes += (await r.body()).length; } catch {} });
      const t0 = Date.now();
      if (side === "console") {
        await page.goto(`${url}/#/train`, { waitUntil: "commit" });
        await page.locator("[data-testid=task-type-1]").waitFor({ timeout: 30_000 });
        out.task_type_step_ms.push(Date.now() - t0);
        out.bytes = Math.max(out.bytes, bytes);
      } else {
        await page.goto(`${url}/no-such-page`, { waitUntil: "load" });
        out.blank_page_ms.push(Date.now() - t0);
      }
      await context.close();
    }
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
