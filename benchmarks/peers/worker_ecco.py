"""Ecco 0.1.2 as a benchmark worker; runs with the Ecco environment's python (see setup_peers.sh).

Usage: .cache/peers/ecco/bin/python benchmarks/peers/worker_ecco.py MODEL_DIR
Ecco generates with Hugging Face generate, then runs captum once per output token over the growing
prefix, attributing the softmax probability of the chosen token (its model_forward returns softmax).
"""

from __future__ import annotations

import importlib.metadata
import sys
import time
from typing import Any

import ecco
import numpy as np
import torch
from worker_io import METHODS, serve, set_threads

# The Llama entry Ecco lacks (shared/notes/peers.md).
LLAMA_CONFIG = {
    "embedding": "model.embed_tokens.weight",
    "type": "causal",
    "activations": [r"mlp\.down_proj"],
    "token_prefix": "Ġ",
    "partial_token_prefix": "",
}


def main() -> None:
    set_threads(torch)
    lm = ecco.from_pretrained(
        sys.argv[1], model_config=LLAMA_CONFIG, activations=True, verbose=False, gpu=False
    )

    def handle(request: dict[str, Any]) -> dict[str, Any]:
        method = request["method"]
        attribution = [method] if method in METHODS else []
        start = time.perf_counter()
        output = lm.generate(
            request["prompt"], generate=request["n"], do_sample=False, attribution=attribution
        )
        seconds = time.perf_counter() - start
        token_ids = [int(i) for i in output.token_ids[0]]
        n_input = int(output.n_input_tokens)
        saved = None
        if attribution and request.get("save"):
            rows = output.attribution[method]  # list of (prefix,) vectors, one per output token
            matrix = np.zeros((len(rows), len(token_ids)), dtype=np.float32)
            for n, row in enumerate(rows):
                matrix[n, : len(row)] = row
            np.save(request["save"], matrix)
            saved = request["save"]
        return {"seconds": seconds, "token_ids": token_ids, "n_input": n_input, "saved": saved}

    serve(
        handle,
        {
            "tool": "ecco",
            "version": importlib.metadata.version("ecco"),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
    )


if __name__ == "__main__":
    main()
