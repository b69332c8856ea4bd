"""A copy of the daemon's SmolLM2 folder that the peers' older transformers read the same way.

Why: the daemon's converted folder was written by transformers 5. Ecco runs on transformers 4.36 and
inseq on 4.x; both must see the same weights and tokenize exactly as the daemon does:
- tokenizer.json: merges as "a b" strings (tokenizers 0.15 cannot read ["a", "b"] pairs);
- tokenizer_config.json: the generic fast tokenizer class (4.x does not know "TokenizersBackend"); the
  post-processor, which adds no BOS, is kept, so the prompt's ids equal the daemon's;
- config.json: rope_theta spelled out (4.x reads rope_theta, not v5's rope_parameters, and would fall
  back to 10000 silently);
- the weights are linked, not copied.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

MARKER = "peer-model.json"
VERSION = 1


def convert_merges(merges: list) -> list[str]:
    """["a", "b"] pairs -> "a b" strings; strings stay as they are."""
    return [m if isinstance(m, str) else " ".join(m) for m in merges]


def peer_config(config: dict) -> dict:
    """config.json for transformers 4.x: rope_theta spelled out, torch_dtype for the old name."""
    out = dict(config)
    rope = config.get("rope_parameters") or {}
    if "rope_theta" not in out and "rope_theta" in rope:
        out["rope_theta"] = rope["rope_theta"]
    if rope.get("rope_type", "default") != "default":
        raise ValueError(f"rope type {rope.get('rope_type')!r} needs translating for transformers 4.x")
    out.setdefault("torch_dtype", config.get("dtype", "float32"))
    return out


def peer_tokenizer_config(config: dict) -> dict:
    keep = ("bos_token", "eos_token", "pad_token", "unk_token", "chat_template")
    out = {k: config[k] for k in keep if k in config}
    out.update(
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": 8192,
            "clean_up_tokenization_spaces": False,
            "add_bos_token": False,
            "add_eos_token": False,
        }
    )
    return out


def build_peer_model(source: Path, dest: Path) -> Path:
    """Write (once) the peer-readable copy of ``source`` into ``dest``; returns ``dest``."""
    source, dest = Path(source), Path(dest)
    stamp = {
        "version": VERSION,
        "source": str(source.resolve()),
        "source_mtime": (source / "model.safetensors").stat().st_mtime,
    }
    marker = dest / MARKER
    if marker.exists() and json.loads(marker.read_text()) == stamp:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    config = json.loads((source / "config.json").read_text())
    (dest / "config.json").write_text(json.dumps(peer_config(config), indent=2))
    tokenizer = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["model"]["merges"] = convert_merges(tokenizer["model"]["merges"])
    tokenizer["model"].pop("ignore_merges", None)  # unknown to tokenizers 0.15; false here anyway
    (dest / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    tok_config = json.loads((source / "tokenizer_config.json").read_text())
    template = source / "chat_template.jinja"
    if template.exists():
        tok_config["chat_template"] = template.read_text()
    (dest / "tokenizer_config.json").write_text(json.dumps(peer_tokenizer_config(tok_config), indent=2))
    special = {
        k: tok_config[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token") if k in tok_config
    }
    (dest / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    if (source / "generation_config.json").exists():
        shutil.copyfile(source / "generation_config.json", dest / "generation_config.json")
    os.symlink((source / "model.safetensors").resolve(), dest / "model.safetensors")
    marker.write_text(json.dumps(stamp))
    return dest
