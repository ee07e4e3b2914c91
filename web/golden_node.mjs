#!/usr/bin/env node
// transformers.js in Node (onnxruntime-node) on a web bundle's golden cases: the fast path for tests.
// Usage: node web/golden_node.mjs BUNDLE_DIR  -> JSON {"dtype", "cases": [...]} on stdout (see
// edgepack/web/demo/embedding.js, which the demo page runs too); edgepack compares them (golden.py).
import fs from "node:fs";
import path from "node:path";
import * as transformers from "@huggingface/transformers";

const bundle = path.resolve(process.argv[2] ?? ".");
const { makeEmbedder, runGolden } = await import(path.join(bundle, "demo", "embedding.js"));
transformers.env.allowRemoteModels = false; // the bundle only, never the Hub
transformers.env.allowLocalModels = true;
const manifest = JSON.parse(fs.readFileSync(path.join(bundle, "edgepack.json"), "utf8"));
const extractor = await transformers.pipeline("feature-extraction", bundle, { device: "cpu" });
const cases = await runGolden(makeEmbedder(transformers, extractor, manifest), manifest);
process.stdout.write(JSON.stringify({ dtype: extractor.model.sessions?.model?.config?.dtype ?? null, cases }) + "\n");
