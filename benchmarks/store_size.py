"""What one stored result costs the front door's store, by text length: the second limit of one front door.

Usage: .venv/bin/python benchmarks/store_size.py [--model smollm2-135m] [--tokens 32 128 512]

For each length, a teacher-forced analysis with the defaults (activations of every layer, rankings) and one
with grad×input too, and a generation of the same number of new tokens; ``results.info`` gives the bytes the
daemon keeps for each. With model replicas these runs also cross from a replica to the front door once, and
back to a replica with each view (docs/scale.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ecco_client  # noqa: E402
from tests.daemon_process import DaemonProcess  # noqa: E402

WORDS = ("the quick brown fox jumps over the lazy dog while a cat sleeps in the warm sun near an old "
         "stone wall").split()


def text_of(client: ecco_client.Client, n_tokens: int) -> str:
    """A text of about ``n_tokens`` tokens for this model's tokenizer."""
    words = (WORDS * (n_tokens // len(WORDS) + 2))[:n_tokens]
    while len(client.model().analyze(" ".join(words), activations=False, rankings=False).tokens) > n_tokens:
        words = words[:-1]
    return " ".join(words)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, nargs="+", default=[32, 128, 512])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, DaemonProcess(Path(tmp), [args.model]) as daemon, \
            ecco_client.connect(connection_file=daemon.connection_file, timeout=600) as client:
        model = client.list_models()[0]
        print(f"model {model['name']}: {model['n_layers']} layers, vocabulary {model['vocab_size']}")
        print("| tokens | analysis MiB | analysis + grad×input MiB | generation MiB |")
        print("|---:|---:|---:|---:|")
        for n in args.tokens:
            text = text_of(client, n)
            lm = client.model()
            sizes = [client.call("results.info", {"result_id": out.result_id})["bytes"] / 2**20 for out in (
                lm.analyze(text), lm.analyze(text, attribution=["grad_x_input"]), lm.generate(text[:20], generate=n))]
            print(f"| {n} | {sizes[0]:.1f} | {sizes[1]:.1f} | {sizes[2]:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
