"""A model on the daemon, with Ecco's vocabulary: ``lm.generate(text, generate=N)``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from ecco_client.output import Output

TokenCallback = Callable[[dict[str, Any]], None]


def generate_params(model: str | None, text: str | list[int], generate: int, do_sample: bool,
                    temperature: float, top_k: int, top_p: float, seed: int | None, alternatives: int,
                    array_dtype: str, extra: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {
        "generate": generate, "do_sample": do_sample, "temperature": temperature, "top_k": top_k,
        "top_p": top_p, "alternatives": alternatives, "array_dtype": array_dtype, **extra,
    }
    if model is not None:
        params["model"] = model
    if seed is not None:
        params["seed"] = seed
    if isinstance(text, str):
        params["prompt"] = text
    else:
        params["input_ids"] = [int(i) for i in text]
    return params


def analyze_params(model: str | None, text: str | list[int], attribution: Sequence[str],
                   options: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {"attribution": list(attribution), **options}
    if model is not None:
        params["model"] = model
    if isinstance(text, str):
        params["text"] = text
    else:
        params["input_ids"] = [int(i) for i in text]
    return params


class LanguageModel:
    def __init__(self, client: Any, name: str | None) -> None:
        self.client = client
        self.name = name

    def analyze(self, text: str | list[int], attribution: Sequence[str] = (), **options: Any) -> Output:
        """Teacher-forced: every token after the first is scored and attributed as if it had been generated.

        Options: steps (integrated gradients), foil (token ids, contrastive), attention, activation_layers,
        topk, target / target_ids (encoder-decoder output text), array_dtype, rankings (False: computed when
        ``rankings()`` first asks), backward_precision ("reduced": bf16 matmuls in the backward passes only;
        faster on a CPU with AMX, close tokens' order may swap). See protocol/PROTOCOL.md.
        """
        result = self.client.call("analyze", analyze_params(self.name, text, attribution, options))
        return Output.from_result(result, self.client)

    def generate(self, text: str | list[int], generate: int = 20, *, do_sample: bool = False,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int | None = None,
                 alternatives: int = 5, array_dtype: str = "float32", on_token: TokenCallback | None = None,
                 **extra: Any) -> Output:
        """Generate ``generate`` tokens; ``on_token`` sees each token as it streams in. With
        ``attribution=[...]`` the generated tokens are analysed too; ``analyze``'s options apply."""
        handle = self.client.request("generate", generate_params(
            self.name, text, generate, do_sample, temperature, top_k, top_p, seed, alternatives,
            array_dtype, extra))
        for event in handle.events():
            if event.name == "token" and on_token is not None:
                on_token(event.content)
        return Output.from_result(handle.result(), self.client)

    def stream(self, text: str | list[int], generate: int = 20, **options: Any) -> Iterator[dict[str, Any]]:
        """Yield each token event as it arrives; the finished Output is the generator's return value."""
        handle = self.client.request("generate", generate_params(
            self.name, text, generate, options.pop("do_sample", False), options.pop("temperature", 1.0),
            options.pop("top_k", 0), options.pop("top_p", 1.0), options.pop("seed", None),
            options.pop("alternatives", 5), options.pop("array_dtype", "float32"), options))
        try:
            for event in handle.events():
                if event.name == "token":
                    yield event.content
        except GeneratorExit:
            if not handle.stream.done:
                handle.cancel()
            raise
        return Output.from_result(handle.result(), self.client)


class AsyncLanguageModel:
    def __init__(self, client: Any, name: str | None) -> None:
        self.client = client
        self.name = name

    async def analyze(self, text: str | list[int], attribution: Sequence[str] = (), **options: Any) -> Output:
        result = await self.client.call("analyze", analyze_params(self.name, text, attribution, options))
        return Output.from_result(result, self.client)

    async def generate(self, text: str | list[int], generate: int = 20, *, do_sample: bool = False,
                       temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int | None = None,
                       alternatives: int = 5, array_dtype: str = "float32",
                       on_token: TokenCallback | None = None, **extra: Any) -> Output:
        stream = await self.client.request("generate", generate_params(
            self.name, text, generate, do_sample, temperature, top_k, top_p, seed, alternatives,
            array_dtype, extra))
        async for event in stream:
            if event.name == "token" and on_token is not None:
                on_token(event.content)
        return Output.from_result(await stream.result(), self.client)

    async def stream(self, text: str | list[int], generate: int = 20, **options: Any) -> AsyncIterator[dict[str, Any]]:
        request = await self.client.request("generate", generate_params(
            self.name, text, generate, options.pop("do_sample", False), options.pop("temperature", 1.0),
            options.pop("top_k", 0), options.pop("top_p", 1.0), options.pop("seed", None),
            options.pop("alternatives", 5), options.pop("array_dtype", "float32"), options))
        async for event in request:
            if event.name == "token":
                yield event.content
