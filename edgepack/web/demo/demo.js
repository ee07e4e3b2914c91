// edgepack web demo: transformers.js's feature-extraction pipeline on the bundle this page sits in.
// The bundle root (one folder up) is a transformers.js model folder; edgepack.json says how to pool.
// Query parameters: ?device=webgpu to try WebGPU, ?dtype=fp32|q4|... to load another onnx/model_<dtype>.onnx.
import * as transformers from "./vendor/transformers.min.js";
import { makeEmbedder, runGolden } from "./embedding.js";

const { env, pipeline } = transformers;

// The bundle's path on this server, not a full URL: transformers.js treats any http(s) URL as a remote
// model (refused below) and a path as a local folder it fetches from this origin.
const bundleUrl = new URL("../", location.href).pathname;
const params = new URLSearchParams(location.search);
env.allowLocalModels = true;   // the bundle, served beside this page
env.allowRemoteModels = false; // never the Hugging Face Hub
env.useBrowserCache = false;   // a rebuilt bundle is read afresh, not from an old cache
env.backends.onnx.wasm.wasmPaths = new URL("./vendor/", location.href).href; // no CDN
// One thread: threads need cross-origin isolation headers a plain static server does not send.
env.backends.onnx.wasm.numThreads = 1;

const $ = (id) => document.getElementById(id);
const status = (text) => { $("status").textContent = text; };

async function load() {
  const manifest = await (await fetch(bundleUrl + "edgepack.json")).json();
  const options = { device: params.get("device") || "wasm" };
  if (params.get("dtype")) options.dtype = params.get("dtype");
  const extractor = await pipeline("feature-extraction", bundleUrl, options);
  return { manifest, extractor, ...makeEmbedder(transformers, extractor, manifest) };
}

function cosine(a, b) {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return dot / Math.max(Math.sqrt(na * nb), 1e-12);
}

async function search(model) {
  const notes = $("notes").value.split("\n").map((s) => s.trim()).filter(Boolean);
  const query = $("query").value.trim();
  if (!notes.length || !query) { status("Type some notes and a query."); return; }
  status(`Embedding ${notes.length} notes…`);
  const t0 = performance.now();
  const [q, ...vectors] = await model.embed([query, ...notes]);
  const ranked = notes.map((text, i) => ({ text, score: cosine(q, vectors[i]) })).sort((a, b) => b.score - a.score);
  $("results").replaceChildren(...ranked.map(({ text, score }) => {
    const li = document.createElement("li");
    const s = document.createElement("span");
    s.className = "score";
    s.textContent = score.toFixed(3);
    li.append(s, text);
    return li;
  }));
  status(`${notes.length} notes ranked in ${(performance.now() - t0).toFixed(0)} ms`);
}

// Per-text latency (ms) of the pipeline, one text per call, as edgepack measures it: p50/p95/mean over
// every run, and each text's own times (`per_text_ms`). The warm-up is a whole pass: Chromium compiles
// WebAssembly in tiers, and the first calls run baseline code.
async function latency(model, texts, repeats = 3) {
  for (const text of texts) await model.embed([text]);
  const perText = texts.map(() => []);
  for (let r = 0; r < repeats; r++) {
    for (const [i, text] of texts.entries()) {
      const t0 = performance.now();
      await model.embed([text]);
      perText[i].push(performance.now() - t0);
    }
  }
  const times = perText.flat().sort((a, b) => a - b);
  const at = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  return { runs: times.length, p50_ms: at(0.5), p95_ms: at(0.95), mean_ms: times.reduce((a, b) => a + b, 0) / times.length,
    per_text_ms: perText };
}

try {
  const model = await load();
  // What tests and benchmarks drive (headless Chromium, web/browser.mjs): embeddings, golden cases, latency.
  window.edgepack = {
    embed: model.embed,
    golden: () => runGolden(model, model.manifest),
    latency: (texts, repeats) => latency(model, texts, repeats),
    dtype: model.extractor.model.sessions?.model?.config?.dtype ?? null,
  };
  $("search").disabled = false;
  $("search").addEventListener("click", () => search(model).catch((e) => status(`Error: ${e.message}`)));
  $("query").addEventListener("keydown", (e) => { if (e.key === "Enter") $("search").click(); });
  status("Model ready. Search your notes.");
  window.edgepackReady = true;
} catch (e) {
  status(`Could not load the model: ${e.message}`);
  window.edgepackError = String(e && e.stack || e);
}
