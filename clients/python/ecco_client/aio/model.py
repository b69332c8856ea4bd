"""A model on the daemon, with Ecco's vocabulary: ``lm.generate(text, generate=N)``.

The one source of the model's methods: the blocking ``LanguageModel`` is built from this class.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

from ecco_client import compare
from ecco_client.aio.output import AsyncOutput
from ecco_client.aio.request import EventCallback, Requester, RequestStream
from ecco_client.aio.watch import watching
from ecco_client.output import Output
from ecco_client.params import analyze_params, decode_params, encode_params, generate_params
from ecco_client.progress import ProgressCallback

TokenCallback = Callable[[dict[str, Any]], None]


class TokenStream:
    """The token events of one generation as they arrive (``async for``); ``await result()`` is the Output.

    Nothing is sent before the first of them is asked for. Closing the stream early (``aclose()``)
    cancels the generation on the daemon. ``on_event`` sees every event of the request (progress too).
    """

    def __init__(self, client: Requester, params: dict[str, Any], on_event: EventCallback | None = None) -> None:
        self._client = client
        self._params = params
        self._on_event = on_event
        self._request: RequestStream | None = None
        self._tokens: AsyncGenerator[dict[str, Any], None] | None = None

    def __aiter__(self) -> TokenStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self._tokens is None:
            # Made here, on the event loop, so that the loop closes it (and cancels the job) if it is dropped.
            self._tokens = self._read()
        return await self._tokens.__anext__()

    async def result(self) -> AsyncOutput:
        request = await self._start()
        return AsyncOutput(Output.from_result(await request.result(), self._client))

    async def aclose(self) -> None:
        if self._tokens is not None:
            await self._tokens.aclose()

    async def _start(self) -> RequestStream:
        if self._request is None:
            self._request = await self._client.request("generate", self._params, on_event=self._on_event)
        return self._request

    async def _read(self) -> AsyncGenerator[dict[str, Any], None]:
        async with await self._start() as request:
            async for event in request:
                if event.name == "token":
                    yield event.content


class AsyncLanguageModel:
    def __init__(self, client: Requester, name: str | None) -> None:
        self.client = client
        self.name = name

    async def analyze(self, text: str | list[int], attribution: Sequence[str] = (), *,
                      on_progress: ProgressCallback | None = None, progress: bool | None = None,
                      **options: Any) -> AsyncOutput:
        """Teacher-forced: every token after the first is scored and attributed as if it had been generated.

        Options: steps (integrated gradients), foils (token ids or one-token texts such as " Berlin",
        contrastive: one for all targets or one per target; "why this token rather than the foil"), attention,
        activation_layers,
        topk, target / target_ids (encoder-decoder output text), array_dtype, rankings (False: computed when
        ``rankings()`` first asks), backward_precision ("reduced": bf16 matmuls in the backward passes only;
        faster on a CPU with AMX, close tokens' order may swap). See protocol/PROTOCOL.md.

        ``on_progress`` sees each ``Progress`` (queue position, done of total, ETA); ``progress`` draws a
        tqdm bar (None: the client's setting, by default in a notebook or a terminal; False: never).
        """
        params = analyze_params(self.name, text, attribution, options)
        with watching("analyze", on_progress, self._show(progress)) as on_event:
            result = await self.client.call("analyze", params, on_event=on_event)
        return AsyncOutput(Output.from_result(result, self.client))

    async def generate(self, text: str | list[int], generate: int = 20, *, do_sample: bool = False,
                       temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int | None = None,
                       alternatives: int = 5, array_dtype: str = "float32",
                       on_token: TokenCallback | None = None, on_progress: ProgressCallback | None = None,
                       progress: bool | None = None, **extra: Any) -> AsyncOutput:
        """Generate ``generate`` tokens; ``on_token`` sees each token as it streams in. With
        ``attribution=[...]`` (or ``analyze=True``) the generated tokens are analysed too; ``analyze``'s
        options apply. ``on_progress`` and ``progress`` as for ``analyze``."""
        params = generate_params(self.name, text, generate, {
            "do_sample": do_sample, "temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed,
            "alternatives": alternatives, "array_dtype": array_dtype, **extra})
        with watching("generate", on_progress, self._show(progress), new_tokens=generate) as on_event:
            tokens = TokenStream(self.client, params, on_event)
            async with contextlib.aclosing(tokens):
                async for token in tokens:
                    if on_token is not None:
                        on_token(token)
            return await tokens.result()

    async def similarity(self, corpus: Sequence[str | Output], method: str, layer_a: int, layer_b: int, *,
                         source: str = "hidden", dims: int | None = None) -> float:
        """CCA, SVCCA, PWCCA or CKA between two layers over a corpus: the tokens of every item stacked.

        Items are texts (analysed now) or outputs already on the daemon. As Ecco's usage compares layers
        over many texts: CCA needs more tokens than the neurons compared (``dims`` keeps fewer neurons for
        cca and pwcca, or SVD components for svcca); too few gets a ValueError that says how many.
        """
        compare.check(method, source, dims)
        pairs = []
        for item in corpus:
            output = item if isinstance(item, Output) else await self.analyze(item, rankings=False)
            if output.result_id is None:
                raise ValueError("an output in the corpus is not connected to a daemon result")
            reply = await self.client.call("view", compare.states_params(output.result_id, source, layer_a, layer_b))
            pairs.append(compare.layer_pair(reply["data"]))
        if not pairs:
            raise ValueError("the corpus is empty")
        return compare.compare(method, pairs, dims)

    async def encode_tokens(self, text: str | Sequence[str], add_special_tokens: bool = True) -> dict[str, Any]:
        """The model's token ids of each text, tokenized by the daemon: ``{input_ids, tokens}``, one per text."""
        return await self.client.call("tokens.encode", encode_params(self.name, text, add_special_tokens))

    async def decode_tokens(self, ids: Any, skip_special_tokens: bool = False) -> dict[str, Any]:
        """Ids (one row or several) back to text by the daemon: ``{text, pieces, token_texts}``, one per row."""
        return await self.client.call("tokens.decode", decode_params(self.name, ids, skip_special_tokens))

    def stream(self, text: str | list[int], generate: int = 20, **options: Any) -> TokenStream:
        """Yield each token event as it arrives; the finished Output is the generator's return value.

        Async: ``async for`` the events, then ``await stream.result()`` for the Output.
        """
        return TokenStream(self.client, generate_params(self.name, text, generate, options))

    def _show(self, progress: bool | None) -> bool | None:
        """Whether to draw a bar: the call's choice, else the client's (``connect(progress=...)``)."""
        return progress if progress is not None else getattr(self.client, "progress", None)
