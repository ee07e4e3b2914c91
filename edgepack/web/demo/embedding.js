// The one embedding path of a web bundle, shared by the demo page (browser) and web/golden_node.mjs (Node):
// transformers.js's feature-extraction pipeline, pooled as edgepack.json says.
//
// embed(texts): what an app gets from `extractor(texts, {pooling, normalize})`.
// embedIds(ids): the same model and pooling on given token ids. The golden cases carry their ids; for a
//   text longer than the bundle's max_length, transformers.js truncates by slicing after [CLS]/[SEP] are
//   added (its truncateHelper), so its last token is not [SEP] as in edgepack's runtimes (and Hugging Face
//   tokenizers); those cases are compared through their ids.
// tokenize(text): the ids transformers.js feeds the model (truncated as the pipeline truncates).
export function makeEmbedder(transformers, extractor, manifest) {
  const { Tensor, mean_pooling } = transformers;
  const pooling = manifest.pooling?.mode === "cls" ? "cls" : "mean";
  const normalize = manifest.pooling?.normalize !== false;
  const embed = async (texts) => (await extractor(texts, { pooling, normalize })).tolist();
  const embedIds = async (ids) => {
    const shape = [1, ids.length];
    const inputIds = new Tensor("int64", BigInt64Array.from(ids, (x) => BigInt(x)), shape);
    const mask = new Tensor("int64", BigInt64Array.from(ids, () => 1n), shape);
    const { last_hidden_state: hidden } = await extractor.model({ input_ids: inputIds, attention_mask: mask });
    let out = pooling === "cls" ? hidden.slice(null, 0) : mean_pooling(hidden, mask);
    if (normalize) out = out.normalize(2, -1);
    return out.tolist()[0];
  };
  const tokenize = (text) => extractor.tokenizer(text, { truncation: true }).input_ids.tolist()[0].map(Number);
  return { embed, embedIds, tokenize, pooling, normalize };
}

// Each golden case of edgepack.json run as an app would (the text), and through its ids when
// transformers.js tokenised it differently (see above).
export async function runGolden(embedder, manifest) {
  const cases = [];
  for (const { text, ids } of manifest.golden) {
    const jsIds = embedder.tokenize(text);
    const sameIds = jsIds.length === ids.length && jsIds.every((x, i) => x === ids[i]);
    const fromText = (await embedder.embed([text]))[0];
    cases.push({ ids: jsIds, same_ids: sameIds, from_text: fromText, from_ids: sameIds ? fromText : await embedder.embedIds(ids) });
  }
  return cases;
}
