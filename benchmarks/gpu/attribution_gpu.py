"""Attribution on a GPU: this project's batched analyses against Ecco's per-token loop, in one process.

Usage (see benchmarks/README.md for the exact device command):
    python3 benchmarks/gpu/attribution_gpu.py              # the H100 run: N = 8, 32, 64; fp32 and bf16
    python3 benchmarks/gpu/attribution_gpu.py --smoke      # tiny model on CPU: checks that everything runs

The model is SmolLM2-135M-shaped (Llama: 30 layers, hidden 576, 9 heads, 3 key/value heads, MLP 1536,
vocabulary 49152) with random weights: the GGUF does not fit the device machine's file limit, and timing
does not depend on the weights. The prompt is 11 random token ids (as long as the CPU benchmark's prompt);
greedy generation of N tokens.

Compared, per N and dtype, for grad×input and integrated gradients (50 steps):
- "Ecco": what Ecco 0.1.2 does after generating: for every output token, captum's InputXGradient or
  IntegratedGradients over the growing prefix's embeddings, the attributed score being the softmax
  probability of that token (Ecco's model_forward), L2 norm per token, normalized. captum is imported from
  the carried wheel; without it the same loop runs with torch.autograd (reported as "Ecco-style loop").
- "ours": ecco_daemon.analysis.attribution.attribute on the teacher-forced sequence (one forward, batched
  backward passes, chunked to fit memory), same score.
Each is timed for the attribution alone and end to end: Ecco generates with Hugging Face generate, ours
with the daemon's own ecco_daemon.generation.generate, which on CUDA decodes over a static cache with the
step compiled into a CUDA graph (torch.compile, mode="reduce-overhead"; compiled in an untimed warm-up).
On the CPU (--smoke) the same static path runs with dynamo's "eager" backend, as a check that it works.
Generation per token is printed for both. Agreement (Spearman per output token, fp32) is printed as a
check. Results also go to --out as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ecco_daemon.analysis.architecture import inspect_architecture  # noqa: E402
from ecco_daemon.analysis.attribution import attribute  # noqa: E402
from ecco_daemon.analysis.options import AnalysisOptions  # noqa: E402
from ecco_daemon.analysis.sequence import causal_sequence  # noqa: E402
from ecco_daemon.generation.decoding import SamplingParams, generate  # noqa: E402
from ecco_daemon.generation.static_cache import CompileOptions, StaticDecoder, install_static_decoder  # noqa: E402
from ecco_daemon.models.loaded import LoadedModel  # noqa: E402

SMOLLM2 = dict(
    num_hidden_layers=30,
    hidden_size=576,
    num_attention_heads=9,
    num_key_value_heads=3,
    intermediate_size=1536,
    vocab_size=49152,
    head_dim=64,
    rope_theta=100000.0,
    max_position_embeddings=8192,
    tie_word_embeddings=True,
    rms_norm_eps=1e-5,
)
TINY = dict(
    num_hidden_layers=2,
    hidden_size=64,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=128,
    vocab_size=512,
    head_dim=16,
    rope_theta=10000.0,
    max_position_embeddings=512,
    tie_word_embeddings=True,
    rms_norm_eps=1e-5,
)
METHODS = ("grad_x_input", "integrated_gradients")
SHORT = {"grad_x_input": "grad×input", "integrated_gradients": "IG"}
PROMPT_TOKENS = 11


def build_model(shape: dict[str, Any], dtype: torch.dtype, device: torch.device) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**shape, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    model = LlamaForCausalLM(config).to(device=device, dtype=dtype).eval()
    model.generation_config.eos_token_id = None  # exactly N tokens
    model.generation_config.pad_token_id = 2
    return model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


def hf_generate(model: torch.nn.Module, prompt: torch.Tensor, n: int) -> list[int]:
    with torch.no_grad():
        out = model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
        )
    return out[0].tolist()


def daemon_model(model: torch.nn.Module, device: torch.device) -> tuple[LoadedModel, StaticDecoder]:
    """The model as the daemon holds it, decoding over a static cache: on CUDA with the daemon's default
    compile (CUDA graphs), on the CPU with dynamo's eager backend (inductor would take minutes here)."""
    lm = LoadedModel("smollm2-shaped", "random weights", model, None, device, model.dtype, 0.0,  # type: ignore[arg-type]
                     frozenset(), compile_decode="on")  # no tokenizer: generate() takes ids
    options = CompileOptions() if device.type == "cuda" else CompileOptions(backend="eager", mode=None)
    return lm, install_static_decoder(lm, options)


def ours_generate(lm: LoadedModel, prompt: torch.Tensor, n: int) -> list[int]:
    """Greedy decoding through the daemon's generate(): scored steps with 5 alternatives, as it serves them."""
    return generate(lm, prompt[0].tolist(), n, SamplingParams()).all_ids


# ------------------------------------------------------------------------------ Ecco's per-token loop


def load_captum(allowed: bool = True) -> Any | None:
    if not allowed:
        return None
    try:
        import captum.attr as captum_attr

        return captum_attr
    except Exception:  # not carried: the same loop with torch.autograd
        return None


def ecco_loop(
    model: torch.nn.Module, ids: list[int], n_input: int, method: str, steps: int, captum_attr: Any | None
) -> np.ndarray:
    """Ecco 0.1.2's attribution after generation: one captum call per output token, growing prefix."""
    embedding = model.get_input_embeddings().weight
    rows = np.zeros((len(ids) - n_input, len(ids)), dtype=np.float32)

    def forward(inputs_embeds: torch.Tensor) -> torch.Tensor:  # Ecco's model_forward
        return F.softmax(model(inputs_embeds=inputs_embeds).logits[:, -1, :], dim=-1)

    for n, position in enumerate(range(n_input, len(ids))):
        prefix = torch.tensor([ids[:position]], device=embedding.device)
        # Ecco's _get_embeddings: a one-hot matrix times the embedding matrix
        one_hot = torch.zeros(1, position, embedding.shape[0], device=embedding.device, dtype=embedding.dtype)
        one_hot.scatter_(-1, prefix.unsqueeze(-1), 1)
        embeds = (one_hot @ embedding).detach()  # (1, P, H)
        target = ids[position]
        if captum_attr is not None:
            cls = captum_attr.InputXGradient if method == "grad_x_input" else captum_attr.IntegratedGradients
            explainer = cls(forward_func=forward)
            kwargs = {"n_steps": steps} if method == "integrated_gradients" else {}
            attributions = explainer.attribute(embeds, target=target, **kwargs)
        else:
            attributions = manual_attribution(forward, embeds, target, method, steps)
        norm = torch.norm(attributions.squeeze(0).float(), dim=1)
        rows[n, :position] = (norm / norm.sum()).detach().cpu().numpy()
    return rows


def manual_attribution(
    forward: Callable[[torch.Tensor], torch.Tensor],
    embeds: torch.Tensor,
    target: int,
    method: str,
    steps: int,
) -> torch.Tensor:
    """captum's InputXGradient / IntegratedGradients (Gauss-Legendre, zero baseline) with torch.autograd."""
    with torch.enable_grad():
        if method == "grad_x_input":
            x = embeds.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(forward(x)[:, target].sum(), x)
            return grad * embeds
        points, weights = np.polynomial.legendre.leggauss(steps)
        alphas = torch.tensor(0.5 * (points + 1), device=embeds.device, dtype=embeds.dtype)
        weight = torch.tensor(0.5 * weights, device=embeds.device, dtype=torch.float32)
        path = (alphas[:, None, None] * embeds).requires_grad_(True)  # (steps, P, H)
        (grads,) = torch.autograd.grad(forward(path)[:, target].sum(), path)
        return (torch.einsum("s,sph->ph", weight, grads.float()) * embeds[0].float()).unsqueeze(0)


# ------------------------------------------------------------------------------------------ ours


def ours(
    model: torch.nn.Module, arch: Any, ids: list[int], n_input: int, method: str, steps: int
) -> np.ndarray:
    seq = causal_sequence(ids, n_input)
    result = attribute(model, arch, seq, method, AnalysisOptions(steps=steps, score="prob"))
    return result.values


# ------------------------------------------------------------------------------------------- driver


def spearman_rows(a: np.ndarray, b: np.ndarray, n_input: int) -> tuple[float, float]:
    from scipy.stats import spearmanr

    rhos = [spearmanr(a[n, : n_input + n], b[n, : n_input + n]).statistic for n in range(a.shape[0])]
    return float(np.nanmin(rhos)), float(np.nanmedian(rhos))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def end_to_end(generate_ids: Callable[[], list[int]], attribution: Callable[[list[int]], Any]) -> Any:
    """Generate N tokens (each tool its own way), then attribute them: the whole user-visible call."""
    return attribution(generate_ids())


def measure_dtype(
    args: argparse.Namespace, dtype_name: str, device: torch.device, captum_attr: Any | None, started: float
) -> list[dict[str, Any]]:
    shape = TINY if args.smoke else SMOLLM2
    model = build_model(shape, getattr(torch, dtype_name), device)
    arch = inspect_architecture(model)
    generator = torch.Generator().manual_seed(1)
    prompt = torch.randint(3, shape["vocab_size"], (1, PROMPT_TOKENS), generator=generator).to(device)
    lm, decoder = daemon_model(model, device)
    tools = {
        "ours": lambda ids, method: ours(model, arch, ids, PROMPT_TOKENS, method, args.steps),
        "ecco": lambda ids, method: ecco_loop(model, ids, PROMPT_TOKENS, method, args.steps, captum_attr),
    }
    generators = {"ours": partial(ours_generate, lm, prompt), "ecco": partial(hf_generate, model, prompt)}
    warm = hf_generate(model, prompt, 4)  # warm-up: kernels, allocator, captum's first call
    # Compiles the decode step and records its CUDA graph; every N here shares that cache length.
    seconds, _ = timed(partial(ours_generate, lm, prompt, 8), device)
    print(f"{dtype_name}: our decode step compiled and warmed up in {seconds:.1f} s", flush=True)
    for method in METHODS:
        for tool in tools.values():
            tool(warm, method)
    rows = []
    for n in args.ns:
        over = time.monotonic() - started > args.budget_s
        repeats = 1 if over else (args.repeats if n < 64 else max(1, args.repeats - 1))
        gen_times, ours_gen_times, ids, ours_ids = [], [], [], []
        for _ in range(repeats):
            seconds, ids = timed(partial(hf_generate, model, prompt, n), device)
            gen_times.append(seconds)
            seconds, ours_ids = timed(partial(ours_generate, lm, prompt, n), device)
            ours_gen_times.append(seconds)
        if decoder.failed:
            print("our static decode path failed (see the log); ours generated eagerly", flush=True)
        for method in METHODS:
            row: dict[str, Any] = {"dtype": dtype_name, "n": n, "method": method, "generate": gen_times,
                                   "ours_generate": ours_gen_times, "same_tokens": ours_ids == ids,
                                   "static_decode": not decoder.failed}
            values = {}
            for name, tool in tools.items():
                alone, e2e = [], []
                # Ecco's loop takes seconds per call: fewer runs of it, and one end-to-end run.
                runs = repeats if name == "ours" else max(1, repeats - 1)
                for rep in range(runs):
                    seconds, values[name] = timed(partial(tool, ids, method), device)
                    alone.append(seconds)
                    if name == "ours" or rep == 0:
                        attribution = partial(
                            lambda generated, tool, method: tool(generated, method), tool=tool, method=method
                        )
                        seconds, _ = timed(partial(end_to_end, partial(generators[name], n), attribution), device)
                        e2e.append(seconds)
                row[f"{name}_attr"], row[f"{name}_e2e"] = alone, e2e
            row["spearman_min"], row["spearman_median"] = spearman_rows(
                values["ours"], values["ecco"], PROMPT_TOKENS
            )
            rows.append(row)
            print(line(row), flush=True)
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    captum_attr = load_captum(not args.no_captum)
    loop_name = "Ecco (captum)" if captum_attr is not None else "Ecco-style loop"
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {device} ({device_name}); torch {torch.__version__}; Ecco side: {loop_name}", flush=True)
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    for dtype_name in args.dtypes:
        rows += measure_dtype(args, dtype_name, device, captum_attr, started)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {
        "device": str(device),
        "device_name": device_name,
        "torch": torch.__version__,
        "ecco_side": loop_name,
        "steps": args.steps,
        "smoke": args.smoke,
        "rows": rows,
        "elapsed_s": time.monotonic() - started,
    }


HEADER = (
    "| dtype | N | work | gen/token HF | gen/token ours | Ecco attr | ours attr | attr ratio | Ecco e2e | "
    "ours e2e | e2e ratio | Spearman min/median |"
)


def line(row: dict[str, Any]) -> str:
    keys = ("generate", "ours_generate", "ours_attr", "ecco_attr", "ours_e2e", "ecco_e2e")
    ms = {k: median(row[k]) * 1000 for k in keys}
    same = "" if row["same_tokens"] else " (other tokens)"
    return (
        f"| {row['dtype']} | {row['n']} | {SHORT[row['method']]} | {ms['generate'] / row['n']:.1f} ms | "
        f"{ms['ours_generate'] / row['n']:.1f} ms{same} | "
        f"{ms['ecco_attr']:.0f} ms | {ms['ours_attr']:.0f} ms | {ms['ecco_attr'] / ms['ours_attr']:.1f}× | "
        f"{ms['ecco_e2e']:.0f} ms | {ms['ours_e2e']:.0f} ms | {ms['ecco_e2e'] / ms['ours_e2e']:.1f}× | "
        f"{row['spearman_min']:.4f} / {row['spearman_median']:.4f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny model, N = 2 and 4, CPU unless --device")
    parser.add_argument("--device", default=None)
    parser.add_argument("--ns", type=int, nargs="+", default=None)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument(
        "--no-captum", action="store_true", help="Ecco's loop with torch.autograd, not captum"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--budget-s", type=float, default=200.0, help="after this many seconds, one run per cell"
    )
    parser.add_argument("--out", type=Path, default=None, help="write results JSON here")
    args = parser.parse_args()
    args.device = args.device or ("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    args.ns = args.ns or ([2, 4] if args.smoke else [8, 32, 64])
    if args.smoke:
        args.repeats = min(args.repeats, 2)
    print(HEADER, flush=True)
    results = run(args)
    print("\n" + HEADER)
    print("|" + " --- |" * (HEADER.count("|") - 1))
    for row in results["rows"]:
        print(line(row))
    print(
        f"\nmedians; gen/token: greedy generation time over N (HF generate; ours: the daemon's generate, static "
        f"cache, compiled step); attribution targets at 32 tokens: ≥ 20× Ecco (attr), ≥ 10× end to end; "
        f"whole run {results['elapsed_s']:.0f} s"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
