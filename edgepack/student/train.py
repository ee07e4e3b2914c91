"""Distillation on Hugging Face Accelerate: one loop for 1 CPU, N processes or N GPUs.

`accelerate launch -m edgepack build ...` (or torchrun) starts several processes; the Accelerator
wraps the student in DDP and each process trains on its own share of the batches. Only the main
process writes caches and the bundle (see edgepack/distributed.py).

Losses (sentence-transformers / DistilBERT practice):
- embedding teachers: MSE_WEIGHT x MSE between pooled (un-normalised) embeddings + (1 - cosine);
- classifiers: KL(student || teacher) at temperature T, times T^2 (Hinton et al. 2015), + cross-entropy
  when labels exist, + MSE between mean-pooled last hidden states;
- either, with `[student] token_loss`: + MSE between hidden states at every real token, each student layer
  against the teacher layer it was copied from, the last against the teacher's last (TinyBERT, Jiao et al. 2020).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..cache import StageDir, hash_parts
from ..families import FAMILIES
from ..modeling import mean_pool, model_inputs, pool, pooled


MSE_WEIGHT = 10.0


def accelerator():
    from accelerate import Accelerator, DistributedDataParallelKwargs

    # Unused parameters (e.g. BERT's pooler under mean pooling) would stall DDP's gradient sync.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    return Accelerator(cpu=training_device().type == "cpu", kwargs_handlers=[ddp])


class LocalAccelerator:
    """What `distil` needs of an Accelerator, for one process on the CPU: the shape search's short probes
    train on rank 0 alone, where a real Accelerator under torchrun would wait for the other ranks."""

    num_processes, process_index, device = 1, 0, torch.device("cpu")

    def prepare(self, *objects):
        return objects

    def backward(self, loss):
        loss.backward()

    def unwrap_model(self, model):
        return model

    def wait_for_everyone(self):
        pass


@dataclass(frozen=True)
class Setup:
    task: str  # sentence-embedding | text-classification
    family: str
    pooling: str
    max_length: int
    temperature: float = 2.0
    # weight of a token-level term ([student] token_loss): the MSE between hidden states at every real token,
    # student layer i against teacher layer token_layers[i] (0-based; empty: the last against the last). It
    # needs the teacher during training (its token states are too large to cache) and the teacher's tokenizer
    # (no vocabulary pruning).
    token_weight: float = 0.0
    token_layers: tuple[int, ...] = ()
    precision: str = "fp32"  # the teacher pass's and the training steps' matrix products: fp32 | bf16 (resolve_precision)
    dropout: float = 0.0  # every dropout of the student while it trains ([student] dropout)


def bf16_native(device: torch.device) -> bool:
    """Whether `device` multiplies bfloat16 matrices in hardware. On a CPU without AVX512-BF16 or AMX, oneDNN
    emulates them, which is slower than float32; so "auto" trains in bf16 only where this is True."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, so absent ones count as no
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def resolve_precision(requested: str, device: torch.device) -> str:
    """[student] train_precision: "auto" becomes bf16 where the hardware has it (bf16_native), else fp32."""
    if requested == "auto":
        return "bf16" if bf16_native(device) else "fp32"
    return requested


def mixed_precision(setup: Setup, device_type: str):
    """The autocast context for distillation's matrix products: bfloat16 under setup.precision "bf16", a no-op
    otherwise. Weights and anything computed outside it stay float32."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=setup.precision == "bf16")


def training_device() -> torch.device:
    """The device `accelerator()` trains on."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def tokenize(tokenizer, texts, max_length: int) -> list[list[int]]:
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return [e.ids for e in tokenizer.encode_batch(list(texts))]


def make_batches(ids: list[list[int]], batch_size: int, seed: int, epoch: int = 0) -> list[list[int]]:
    """Indices grouped by similar length (little padding, much faster on CPU), batches in random order."""
    rng = random.Random(seed * 1000 + epoch)
    order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), rng.random()))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(ids: list[list[int]], index: list[int], device=None) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(ids[i]) for i in index)
    input_ids = torch.zeros(len(index), longest, dtype=torch.long)
    mask = torch.zeros(len(index), longest, dtype=torch.long)
    for row, i in enumerate(index):
        input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
        mask[row, : len(ids[i])] = 1
    if device is not None:
        input_ids, mask = input_ids.to(device), mask.to(device)
    return input_ids, mask


def forward(model, setup: Setup, input_ids, mask, head_mask=None, tokens: bool = False) -> dict[str, torch.Tensor]:
    """The model's product before normalisation: pooled embedding (the exported graph's own pooling,
    modeling.pooled), or logits + the mean-pooled last hidden state."""
    token_type_ids = FAMILIES[setup.family].uses_token_type_ids
    states = tokens and setup.token_weight  # training only: every layer's hidden states for the token-level loss
    if setup.task == "text-classification":
        out = model(**model_inputs(input_ids, mask, token_type_ids, head_mask), output_hidden_states=True)
        got = {"logits": out.logits, "hidden": mean_pool(out.hidden_states[-1], mask)}
        return {**got, "states": out.hidden_states} if states else got
    if states:
        out = model(**model_inputs(input_ids, mask, token_type_ids), output_hidden_states=True)
        return {"embedding": pool(out.last_hidden_state, mask, setup.pooling), "states": out.hidden_states}
    return {"embedding": pooled(model, input_ids, mask, setup.pooling, token_type_ids, head_mask)}


def token_states(setup: Setup, student_states, teacher_states) -> tuple[torch.Tensor, torch.Tensor]:
    """(student, teacher) hidden states for the token-level loss, stacked (layers, batch, tokens, width): every
    student layer and the teacher layer it is matched to (`Setup.token_layers`), or the last against the last.
    hidden_states[0] is the embeddings' output, so layer i is at i + 1."""
    if setup.token_layers:
        s = student_states[1:]
        t = [teacher_states[i + 1] for i in setup.token_layers]
    else:
        s, t = student_states[-1:], teacher_states[-1:]
    return torch.stack(list(s)).float(), torch.stack(t).float()


def loss_terms(setup: Setup, student: dict, teacher: dict, labels: torch.Tensor | None = None) -> torch.Tensor:
    f = torch.nn.functional
    if setup.task == "text-classification":
        t = setup.temperature
        kl = f.kl_div(f.log_softmax(student["logits"] / t, -1), f.softmax(teacher["logits"] / t, -1), reduction="batchmean")
        loss = kl * t * t + f.mse_loss(student["hidden"], teacher["hidden"])
        if labels is not None and (labels >= 0).any():
            keep = labels >= 0
            loss = loss + f.cross_entropy(student["logits"][keep], labels[keep])
    else:
        s, te = student["embedding"], teacher["embedding"]
        # x10 puts the MSE of MiniLM-scale pooled vectors on the scale of (1 - cos) (measured for issue #11).
        loss = MSE_WEIGHT * f.mse_loss(s, te) + (1 - f.cosine_similarity(s, te, dim=-1)).mean()
    if setup.token_weight and "tokens" in student and "tokens" in teacher:
        # (layers, batch, tokens, width): the mean over layers and real tokens of the squared error per width
        st, tt = student["tokens"], teacher["tokens"]
        m = teacher["mask"].unsqueeze(0).unsqueeze(-1).to(st.dtype)
        per_token = ((st - tt) ** 2 * m).sum() / (m.sum() * st.shape[0] * st.shape[-1]).clamp(min=1)
        loss = loss + setup.token_weight * MSE_WEIGHT * per_token
    return loss


@torch.no_grad()
def model_outputs(model, setup: Setup, ids: list[list[int]], batch_size: int = 64, on_batch=None) -> dict[str, torch.Tensor]:
    """`forward` over many texts in length-sorted batches; rows in the order of `ids`."""
    model.eval()
    parts: dict[str, list] = {}
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        out = forward(model, setup, *collate(ids, index))
        for k, v in out.items():
            parts.setdefault(k, []).append((torch.tensor(index), v.float().cpu()))
        if on_batch:
            on_batch(len(index))
    result = {}
    for k, chunks in parts.items():
        full = torch.zeros(len(ids), chunks[0][1].shape[-1])
        for index, v in chunks:
            full[index] = v
        result[k] = full
    return result


def teacher_outputs(model, setup: Setup, ids: list[list[int]], batch_size: int = 64, on_batch=None) -> dict[str, torch.Tensor]:
    """The distillation targets (cached by `cached_teacher_outputs`). Under bf16 the teacher's products run in
    bfloat16 too: on 2 AVX512-BF16 cores MiniLM's pass took 0.29x the float32 time, and its embeddings kept
    cosine >= 0.99996 to the float32 ones (2,000 built-in texts), far above what a student reaches (~0.9)."""
    with mixed_precision(setup, next(model.parameters()).device.type):
        return model_outputs(model, setup, ids, batch_size, on_batch)


@torch.no_grad()
def held_out_score(model, setup: Setup, ids: list[list[int]], targets: dict[str, torch.Tensor]) -> float:
    """Fidelity to the teacher on held-out text, higher is better (issue #11): the mean cosine of the
    pooled embedding, or for classifiers the share of equal argmax minus a small KL term, so that
    students with the same agreement still rank by how close their probabilities are."""
    was_training = model.training
    got = model_outputs(model, setup, ids)
    model.train(was_training)
    f = torch.nn.functional
    if setup.task == "text-classification":
        s, t = got["logits"], targets["logits"]
        agree = (s.argmax(-1) == t.argmax(-1)).float().mean()
        kl = f.kl_div(f.log_softmax(s, -1), f.softmax(t, -1), reduction="batchmean")
        return float(agree - 0.01 * kl)
    return float(f.cosine_similarity(got["embedding"], targets["embedding"], dim=-1).mean())


def cached_teacher_outputs(work_dir: Path, key: str, compute) -> dict[str, torch.Tensor]:
    """Teacher outputs keyed by a content hash (teacher weights + texts + setup): a second build re-uses them."""
    from safetensors.torch import load_file, save_file

    stage = StageDir(work_dir, "teacher-outputs", key)
    path = stage.path / "outputs.safetensors"
    if stage.done:
        return load_file(str(path))
    outputs = compute()
    save_file({k: v.contiguous() for k, v in outputs.items()}, str(path))
    stage.mark_done()
    return outputs


def teacher_cache_key(teacher_hash: str, setup: Setup, texts) -> str:
    precision = [setup.precision] if setup.precision != "fp32" else []  # float32 keeps the keys it had
    return hash_parts("teacher-outputs-v1", teacher_hash, setup.task, setup.pooling, setup.max_length, *precision, list(texts))


@dataclass(frozen=True)
class Budget:
    """How long distillation may run (issue #11). Steps keep a build reproducible, so they are the
    profiles' unit; seconds (`--budget 10m`) bound the wall clock instead, and then a slower machine
    trains less and two builds can differ."""

    steps: int
    seconds: float = 0.0  # 0 = bounded by steps only
    eval_every: int = 50  # steps between held-out evaluations; step 0 is always evaluated
    patience: int = 0  # evaluations in a row without improvement before stopping early (0 = never)

    def split(self, shares: tuple[float, ...]) -> list[Budget]:
        """One budget per phase (distil, prune, recover), each with its share of steps and seconds."""
        return [replace(self, steps=max(1, round(self.steps * f)), seconds=self.seconds * f) for f in shares]


@dataclass
class Curve:
    """What one distillation phase did: its losses, held-out scores and which step was kept."""

    losses: list[float] = field(default_factory=list)
    evals: list[tuple[int, float]] = field(default_factory=list)  # (step, held-out score), step 0 first
    best_step: int = 0
    stopped: str = "budget"  # budget (steps) | time | early-stop

    def summary(self, points: int = 8) -> dict:
        out = curve_summary(self.losses, points)
        best = dict(self.evals).get(self.best_step)
        out.update({"evals": [[s, round(v, 5)] for s, v in self.evals], "best_step": self.best_step,
                    "best_score": None if best is None else round(best, 5), "stopped": self.stopped})
        return out


def lr_factor(done: float, warmup: float = 0.06) -> float:
    """Linear warm-up over the first 6% of the budget, then linear decay to zero at its end: with a
    time budget the schedule follows the clock, so the rate reaches zero when time runs out."""
    if done < warmup:
        return (done + 1e-3) / warmup
    return max(0.0, (1.0 - done) / (1.0 - warmup))


def adamw(params: list, lr: float) -> torch.optim.AdamW:
    """AdamW as one fused kernel per step where torch has it (CPU and CUDA float32). The default for-loop
    AdamW updates tensor by tensor: on 2 cores it took 61-64 ms of a MiniLM-width 3-layer step's ~170 ms,
    the fused one 10.5-12.8 ms (bench/exploration/fused_adamw.md). Same update rule; results differ from the
    for-loop only in rounding."""
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype == torch.float32 for p in params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.01, fused=fused or None)


def distil(student, setup: Setup, ids: list[list[int]], targets: dict[str, torch.Tensor] | None, *, budget: Budget,
           lr: float, batch_size: int, seed: int, labels=None, accel=None, on_step=None, evaluate=None,
           on_eval=None, teacher=None, tolerance=None) -> Curve:
    """Train `student` towards `targets` (rows aligned with `ids`) within `budget`. With `teacher` and a token-level
    loss, `targets` may be None: each batch's targets then come from the teacher's pass over it.

    Distillation never ends worse than it started: `evaluate(model) -> score` (higher is better, on
    held-out text) runs at step 0 and every `budget.eval_every` steps, the best weights are kept, and
    they are what the student holds on return. `tolerance(best) -> margin`, the held-out score's noise: the latest
    checkpoint within that margin of the best is kept instead (never one below step 0's score), since checkpoints
    that close cannot be told apart on the held-out text and the later one has trained longer at a lower learning
    rate. With several processes each takes every n-th batch;
    stop decisions are taken at evaluations and agreed on by all ranks, so DDP never waits for a
    rank that has stopped.
    """
    accel = accel or accelerator()
    torch.manual_seed(seed)
    set_dropout(student, setup.dropout)
    curve = Curve()
    if budget.steps <= 0:
        return curve
    started = time.perf_counter()
    opt = adamw([p for p in student.parameters() if p.requires_grad], lr)
    model, opt = accel.prepare(student, opt)
    label_t = torch.tensor([-1 if x is None else int(x) for x in labels]) if labels is not None else None
    best = {"score": -math.inf, "state": None}

    def checkpoint(step: int) -> bool:
        """Evaluate; keep the weights if they are the best so far (or, with `tolerance`, within its margin of the
        best). True when this was an improvement."""
        if evaluate is None:
            return True
        model.eval()
        score = float(evaluate(accel.unwrap_model(model)))
        model.train()
        curve.evals.append((step, score))
        if on_eval:
            on_eval(step, score)
        improved = score > best["score"]
        best["score"] = max(best["score"], score)
        start = curve.evals[0][1]  # step 0's score: checkpoint(0) runs first
        if improved or (tolerance and score >= best["score"] - tolerance(best["score"]) and score >= start):
            curve.best_step = step
            best["state"] = {k: v.detach().clone() for k, v in accel.unwrap_model(model).state_dict().items()}
        return improved

    checkpoint(0)
    model.train()
    step, epoch, stale = 0, 0, 0
    while step < budget.steps and curve.stopped == "budget":
        batches = make_batches(ids, batch_size, seed, epoch)
        per_rank = len(batches) // accel.num_processes
        for index in batches[accel.process_index :: accel.num_processes][:per_rank]:
            done = step / budget.steps
            if budget.seconds:
                done = max(done, (time.perf_counter() - started) / budget.seconds)
            for group in opt.param_groups:
                group["lr"] = lr * lr_factor(min(done, 1.0))
            input_ids, mask = collate(ids, index, accel.device)
            # bf16: the products run in bfloat16, the weights, their gradients, AdamW and the loss stay float32.
            # On a 2-core AVX512-BF16 CPU a MiniLM-width step takes 0.51-0.59x the float32 time (bench/exploration/bf16.md).
            with mixed_precision(setup, accel.device.type):
                out = forward(model, setup, input_ids, mask, tokens=teacher is not None)
            student_states = out.pop("states", None)
            out = {k: v.float() for k, v in out.items()}
            target = {k: v[index].to(accel.device) for k, v in targets.items()} if targets is not None else {}
            if setup.token_weight and teacher is not None:  # token states: computed per batch, not cached
                with torch.no_grad(), mixed_precision(setup, accel.device.type):
                    teacher_out = forward(teacher, setup, input_ids, mask, tokens=True)
                teacher_states = teacher_out.pop("states")
                if targets is None:  # no up-front pass (distil.py): the pooled targets come from this one
                    target.update({k: v.float() for k, v in teacher_out.items()})
                out["tokens"], target["tokens"] = token_states(setup, student_states, teacher_states)
                target["mask"] = mask
            y = label_t[index].to(accel.device) if label_t is not None else None
            loss = loss_terms(setup, out, target, y)
            accel.backward(loss)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            value = float(loss.detach())  # one device sync per step
            curve.losses.append(value)
            step += 1
            if on_step:
                on_step(1, value)
            last = step >= budget.steps
            if step % budget.eval_every == 0 or last:
                stale = 0 if checkpoint(step) else stale + 1
                out_of_time = bool(budget.seconds) and time.perf_counter() - started >= budget.seconds
                stop = out_of_time or (budget.patience and stale >= budget.patience)
                if accel.num_processes > 1:  # every rank must leave the loop at the same step
                    stop = bool(accel.reduce(torch.tensor(int(bool(stop)), device=accel.device), "max").item())
                if stop and not last:
                    curve.stopped = "time" if out_of_time else "early-stop"
                    break
            if last:
                break
        epoch += 1
    accel.wait_for_everyone()
    if best["state"] is not None:
        accel.unwrap_model(model).load_state_dict(best["state"])
    model.eval()
    return curve


def set_dropout(model, p: float) -> None:
    """Every dropout of `model` at probability `p`, in place: the `nn.Dropout` modules and the SDPA attention's
    own `dropout_prob`. The config is left as it is, so the saved student keeps the teacher's values."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
        if isinstance(getattr(module, "dropout_prob", None), float):
            module.dropout_prob = p


def steps_for(n_texts: int, batch_size: int, epochs: float, processes: int = 1) -> int:
    per_epoch = (math.ceil(n_texts / batch_size)) // max(1, processes)
    return int(round(per_epoch * epochs))


def curve_summary(losses: list[float], points: int = 8) -> dict:
    """A short loss curve for the manifest: first, last and a few evenly spaced window means."""
    if not losses:
        return {"steps": 0}
    arr = np.asarray(losses)
    windows = np.array_split(arr, min(points, len(arr)))
    return {
        "steps": len(arr),
        "first": round(float(arr[0]), 5),
        "last": round(float(windows[-1].mean()), 5),
        "curve": [round(float(w.mean()), 5) for w in windows],
    }


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
