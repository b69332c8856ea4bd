"""inseq 0.7.1 as a benchmark worker; runs with the inseq environment's python (see setup_peers.sh).

Usage: .cache/peers/inseq/bin/python benchmarks/peers/worker_inseq.py MODEL_DIR
inseq generates with Hugging Face generate, then attributes step by step over the growing prefix, with
the probability of the chosen token as the attributed function (its default). Its integrated gradients
start from the <unk> embedding by default; the worker swaps in captum's zero baseline, which Ecco and
the daemon use, so that the agreement check compares the same quantity (timing is unaffected).
"""

from __future__ import annotations

import importlib.metadata
import sys
import time
from typing import Any

import inseq
import numpy as np
import torch
from inseq.models.decoder_only import DecoderOnlyInputFormatter
from transformers import AutoModelForCausalLM, AutoTokenizer
from worker_io import METHODS, serve, set_threads

INSEQ_NAMES = {"grad_x_input": "input_x_gradient", "integrated_gradients": "integrated_gradients"}


def use_zero_baselines() -> None:
    original = DecoderOnlyInputFormatter.format_attribution_args

    def with_zero_baselines(*args: Any, **kwargs: Any) -> dict[str, Any]:
        attribute_args = original(*args, **kwargs)
        if "baselines" in attribute_args:
            attribute_args["baselines"] = tuple(torch.zeros_like(x) for x in attribute_args["inputs"])
        return attribute_args

    DecoderOnlyInputFormatter.format_attribution_args = staticmethod(with_zero_baselines)


def attribution_matrix(output: Any) -> np.ndarray:
    """(S, N, H) attributions, NaN where a token cannot explain -> (N, S) L2 norms, rows summing to 1."""
    attributions = output.sequence_attributions[0].target_attributions  # (S, N, H)
    norms = torch.linalg.vector_norm(torch.nan_to_num(attributions.float(), nan=0.0), dim=-1).T  # (N, S)
    totals = norms.sum(dim=1, keepdim=True)
    return (norms / totals.clamp_min(1e-30)).numpy().astype(np.float32)


def main() -> None:
    set_threads(torch)
    use_zero_baselines()
    path = sys.argv[1]
    hf_model = AutoModelForCausalLM.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    models = {
        name: inseq.load_model(hf_model, inseq_name, tokenizer=tokenizer)
        for name, inseq_name in INSEQ_NAMES.items()
    }

    def handle(request: dict[str, Any]) -> dict[str, Any]:
        method, n = request["method"], request["n"]
        prompt_ids = tokenizer(request["prompt"]).input_ids
        if method not in METHODS:  # plain generation, for context
            ids = torch.tensor([prompt_ids])
            start = time.perf_counter()
            with torch.no_grad():
                out = hf_model.generate(
                    ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False
                )
            seconds = time.perf_counter() - start
            return {
                "seconds": seconds,
                "token_ids": out[0].tolist(),
                "n_input": len(prompt_ids),
                "saved": None,
            }
        extra = {"n_steps": request["steps"]} if method == "integrated_gradients" else {}
        start = time.perf_counter()
        output = models[method].attribute(
            request["prompt"],
            generation_args={"max_new_tokens": n, "do_sample": False},
            show_progress=False,
            **extra,
        )
        seconds = time.perf_counter() - start
        sequence = output.sequence_attributions[0]
        token_ids = [int(t.id) for t in sequence.target]
        saved = None
        if request.get("save"):
            np.save(request["save"], attribution_matrix(output))
            saved = request["save"]
        return {"seconds": seconds, "token_ids": token_ids, "n_input": len(prompt_ids), "saved": saved}

    serve(
        handle,
        {
            "tool": "inseq",
            "version": importlib.metadata.version("inseq"),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
    )


if __name__ == "__main__":
    main()
