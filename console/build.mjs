// Build the console into console/dist (committed): esbuild bundles src/main.ts with the generated client and
// @connectrpc/connect-web from node_modules; nothing is fetched at run time. `--check` fails when dist is stale.
import { readFileSync, mkdtempSync, mkdirSync, writeFileSync, existsSync, readdirSync, rmSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const check = process.argv.includes("--check");
const out = check ? mkdtempSync(join(tmpdir(), "console-")) : dist;

if (!check) rmSync(dist, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, "src", "main.ts")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome110", "firefox115", "safari16"],
  outfile: join(out, "app.js"),
  legalComments: "none",
  logLevel: "warning",
});
copyFileSync(join(here, "src", "app.css"), join(out, "app.css"));
copyFileSync(join(here, "index.html"), join(out, "index.html"));
writeFileSync(join(out, ".gitattributes"), "* -diff linguist-generated\n");

if (check) {
  const stale = readdirSync(out).filter((f) => !existsSync(join(dist, f)) || !readFileSync(join(out, f)).equals(readFileSync(join(dist, f))));
  stale.push(...(existsSync(dist) ? readdirSync(dist).filter((f) => !existsSync(join(out, f))) : ["dist"]));
  rmSync(out, { recursive: true, force: true });
  if (stale.length) {
    console.error(`stale console build (run \`make console\`): ${stale.join(", ")}`);
    process.exit(1);
  }
  console.log("console/dist is up to date");
} else {
  console.log(`built ${dist}`);
}
