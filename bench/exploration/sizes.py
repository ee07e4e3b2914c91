"""Analytic file-size model (MB = 1e6 bytes): int8 ≈ 1 B/param (+fp32 per-channel scales), int4 block-32 ≈ 0.625 B/param."""
V, D = 30522, 384

def layer_params(heads=12, ffn=1536):
    a = heads * 32
    return 3 * (D * a + a) + a * D + D + 2 * D + D * ffn + ffn + ffn * D + D + 2 * D

def size_mb(n_layers, heads=12, ffn=1536, rank=None, emb_bits=8, mat_bits=8):
    per = 1.0 if mat_bits == 8 else 0.625
    enc = n_layers * layer_params(heads, ffn) * per
    pos = (512 + 2) * D + 2 * D  # position + type embeddings, LN (int8 / fp32 small)
    eb = 1.0 if emb_bits == 8 else 0.625
    emb = V * D * eb if rank is None else V * rank * eb + rank * D
    return (enc + pos + emb) / 1e6

if __name__ == "__main__":
    rows = []
    for L, h, f in [(3, 12, 1536), (3, 12, 1024), (3, 8, 768), (3, 6, 512), (4, 12, 1536), (4, 8, 768), (4, 6, 512), (2, 12, 1536)]:
        for r in (None, 128, 192, 256):
            for eb in (8, 4):
                rows.append((L, h, f, r, eb, size_mb(L, h, f, r, eb)))
    print("| layers | heads | ffn | rank | emb bits | MB (int8 matrices) |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3] or 'full'} | {r[4]} | {r[5]:.2f} |")
