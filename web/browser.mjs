#!/usr/bin/env node
// Run a web bundle's demo page in real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), served from localhost by this script. Nothing outside the bundle is fetched.
//
// Usage: node web/browser.mjs BUNDLE_DIR [--golden] [--latency] [--repeats N] [--screenshot OUT.png]
//                             [--query TEXT] [--dtype DTYPE] [--device wasm|webgpu] [--texts FILE.json]
//                             [--url http://127.0.0.1:8000/]
// Prints one JSON object: {"dtype", "golden": [...], "latency": {...}, "search": {...}}.
//   --golden      every golden case of edgepack.json (edgepack/web/demo/embedding.js runGolden)
//   --latency     per-text latency of the page's pipeline (one text per call) on --texts, else the golden texts
//   --texts       a JSON list of texts: also returns their embeddings ("embeddings"), one pipeline call each
//   --screenshot  type --query into the demo, press Search, wait for the ranked notes, screenshot the page
//   --url         the bundle as another server serves it (e.g. `python -m http.server -d BUNDLE`), not this script's
// Exit 2 when the page cannot load the model (its error is printed).
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const bundle = path.resolve(args[0] ?? ".");
const executablePath = process.env.EDGEPACK_CHROMIUM ?? "/usr/bin/chromium";

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json",
  ".wasm": "application/wasm", ".onnx": "application/octet-stream", ".txt": "text/plain", ".md": "text/markdown" };

// A static server confined to the bundle folder.
const server = http.createServer((req, res) => {
  const rel = decodeURIComponent(new URL(req.url, "http://localhost").pathname);
  const file = path.join(bundle, rel.endsWith("/") ? rel + "index.html" : rel);
  if (!file.startsWith(bundle + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "Content-Type": TYPES[path.extname(file)] ?? "application/octet-stream" });
  fs.createReadStream(file).pipe(res);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = option("--url")?.replace(/\/$/, "") ?? `http://127.0.0.1:${server.address().port}`;

// The flags that work here as root; playwright adds --headless, --no-sandbox and a fresh profile dir.
const browser = await chromium.launch({
  executablePath,
  args: ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const result = {};
let code = 0;
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 900 } });
  const outside = [];
  page.on("request", (r) => { if (!r.url().startsWith(base)) outside.push(r.url()); });
  const query = new URLSearchParams();
  if (option("--dtype")) query.set("dtype", option("--dtype"));
  if (option("--device")) query.set("device", option("--device"));
  const t0 = Date.now();
  await page.goto(`${base}/demo/index.html${query.size ? "?" + query : ""}`);
  await page.waitForFunction(() => window.edgepackReady || window.edgepackError, null, { timeout: 120000 });
  const error = await page.evaluate(() => window.edgepackError);
  if (error) throw new Error(`the demo page could not load the model: ${error}`);
  result.load_ms = Date.now() - t0;
  result.dtype = await page.evaluate(() => window.edgepack.dtype);
  result.browser = browser.version();
  if (flag("--golden")) result.golden = await page.evaluate(() => window.edgepack.golden());
  const manifest = JSON.parse(fs.readFileSync(path.join(bundle, "edgepack.json"), "utf8"));
  const texts = option("--texts") ? JSON.parse(fs.readFileSync(option("--texts"), "utf8"))
    : manifest.golden.map((c) => c.text).filter(Boolean);
  if (option("--texts")) {
    result.embeddings = await page.evaluate(async (t) => {
      const out = [];
      for (const text of t) out.push((await window.edgepack.embed([text]))[0]);
      return out;
    }, texts);
  }
  if (flag("--latency")) {
    result.latency = await page.evaluate(([t, r]) => window.edgepack.latency(t, r), [texts, Number(option("--repeats", "3"))]);
    result.latency.texts = texts.length;
  }
  if (option("--screenshot")) {
    if (option("--query")) await page.fill("#query", option("--query"));
    await page.click("#search");
    await page.waitForSelector("#results li", { timeout: 60000 });
    result.search = {
      results: await page.$$eval("#results li", (items) => items.map((li) => ({
        score: Number(li.querySelector(".score").textContent), text: li.lastChild.textContent }))),
      notes: await page.$eval("#notes", (t) => t.value.split("\n").filter((s) => s.trim()).length),
      status: await page.textContent("#status"),
    };
    await page.screenshot({ path: option("--screenshot"), fullPage: true });
  }
  result.outside_requests = outside;
} catch (e) {
  result.error = String(e.message ?? e);
  code = 2;
} finally {
  await browser.close();
  server.close();
}
// exitCode, not exit(): exit() would cut a large JSON written to a pipe short.
process.exitCode = code;
process.stdout.write(JSON.stringify(result) + "\n");
