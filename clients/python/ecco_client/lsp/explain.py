"""The two commands: explain a range (teacher-forced analysis, then an optional streamed continuation),
and recompute a view from a stored result."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable
from typing import Any

from lsprotocol import types

from ecco_client import views
from ecco_client.lsp import analysis_adapter as adapter
from ecco_client.lsp.daemon_calls import call, run_job
from ecco_client.lsp.errors import BadArguments, CommandFailed
from ecco_client.lsp.language_server import EccoLanguageServer
from ecco_client.lsp.progress import WorkProgress
from ecco_client.lsp.results import Explanation

MAX_GENERATE = 512
TOKEN_NOTIFICATION = "ecco/token"


def parse_explain_arguments(
    ls: EccoLanguageServer, arguments: list[Any]
) -> tuple[str, types.Range, dict[str, Any]]:
    """(uri, range, options?) as the extension sends them."""
    if len(arguments) < 2:
        raise BadArguments("ecco.explain takes (uri, range, options?)")
    uri, raw_range = arguments[0], arguments[1]
    options = arguments[2] if len(arguments) > 2 and isinstance(arguments[2], dict) else {}
    if not isinstance(uri, str):
        raise BadArguments("ecco.explain: the first argument is the document's URI")
    try:
        selected = ls.protocol._converter.structure(raw_range, types.Range)
    except Exception as exc:
        raise BadArguments(f"ecco.explain: the second argument is not an LSP range: {exc}") from exc
    return uri, selected, options


class Explainer:
    def __init__(self, ls: EccoLanguageServer) -> None:
        self.ls = ls
        self._continuations: dict[str, asyncio.Task[None]] = {}

    # ------------------------------------------------------------------------------------ explain

    async def explain(self, arguments: list[Any]) -> dict[str, Any]:
        ls = self.ls
        uri, selected, options = parse_explain_arguments(ls, arguments)
        settings = await ls.fetch_settings(uri)
        await ls.use_settings(settings)
        model = str(options.get("model") or settings.model)
        methods = [str(m) for m in options.get("attribution", settings.attribution_methods)]
        generate = int(options.get("generate", settings.generate_tokens) or 0)
        if not 0 <= generate <= MAX_GENERATE:
            raise BadArguments(f"ecco.explain: generate must lie in 0..{MAX_GENERATE}")

        document = ls.workspace.get_text_document(uri)
        start = document.offset_at_position(selected.start)
        end = document.offset_at_position(selected.end)
        text = document.source[start:end]
        if not text.strip():
            raise BadArguments("ecco.explain: the range holds no text to explain")

        model = await self.ensure_model(model)
        ls.link.set_model(model)
        foil = str(options.get("foil", settings.contrastive_foil) or "")
        request = adapter.analyze_request(text, model, methods, foil)
        async with WorkProgress(ls, f"Ecco: analyzing {len(text)} characters with {model}") as progress:
            raw = await run_job(ls.link, "analyze", request, progress)
            analysis = views.read_analysis(raw, model)
            extras = await self.first_views(analysis)
        tokens = adapter.explained_tokens(
            analysis, text, lambda offset: document.client_position_at_offset(start + offset)
        )
        explanation = Explanation(
            result_id=f"ecco-{uuid.uuid4().hex[:12]}",
            uri=uri,
            range=selected,
            model=analysis.model,
            tokens=tokens,
            view=adapter.render_spec(analysis, extras),
            analysis=analysis,
        )
        self.forget(ls.results.add(explanation))
        ls.publish_diagnostics(uri)
        if generate > 0:
            self._start_continuation(explanation, analysis.token_ids, generate)
        return explanation.to_json()

    async def first_views(self, analysis: views.Analysis) -> dict[str, Any]:
        """From the stored run: layer predictions for the token after the text, NMF factors, the ranks of
        the last token and its rivals, and the last layer's attention (one layer: all of them can be
        large; the panel asks for others). Optional extras: a failure leaves their tab out and is logged,
        the explanation stands. Returns the extra views by name (adapter.render_spec)."""
        position, watch = views.rankings_watch_defaults(analysis)
        asked: dict[str, dict[str, Any]] = {
            "layer-predictions": {"position": len(analysis.tokens)},
            "nmf": {"k": adapter.NMF_DEFAULT_K},
            "rankings-watch": {"position": position, "watch": watch},
            "attention": {"layer": max(analysis.n_layers - 1, 0)},
        }
        requests = [adapter.recompute_request(analysis, view, params) for view, params in asked.items()]
        answers = await asyncio.gather(*(run_job(self.ls.link, *r) for r in requests), return_exceptions=True)
        names = {"layer-predictions": "layer_predictions", "nmf": "nmf", "rankings-watch": "rankings_watch",
                 "attention": "attention"}
        extras: dict[str, Any] = {}
        for (view, params), answer in zip(asked.items(), answers, strict=True):
            if isinstance(answer, BaseException):
                self.ls.log_to_client(f"Ecco: no {view} view: {answer}", types.MessageType.Warning)
                continue
            data = adapter.recompute_view_data(analysis, view, params, answer)
            if view != "layer-predictions":  # kept in the analysis itself
                extras[names[view]] = data
        return extras

    async def ensure_model(self, wanted: str) -> str:
        """The daemon's name for the model, loading it first (with progress) when it is not loaded."""
        listed = (await call(self.ls.link, "models.list"))["models"]
        for entry in listed:
            if wanted in (entry.get("name"), entry.get("source")):
                return str(entry["name"])
        loaded_names = ", ".join(str(e.get("name")) for e in listed) or "none"
        self.ls.log_to_client(
            f"Ecco: model {wanted} is not loaded (loaded: {loaded_names}); asking the daemon to load it"
        )
        async with WorkProgress(self.ls, f"Ecco: loading {wanted}") as progress:
            answer = await run_job(self.ls.link, "models.load", {"model": wanted}, progress)
        return str(answer["model"]["name"])

    # ------------------------------------------------------------------------------ continuation

    def _start_continuation(self, explanation: Explanation, token_ids: list[int], generate: int) -> None:
        msg_id = self.ls.protocol_request_id()
        replied = self.ls.protocol.response_sent(msg_id) if msg_id is not None else None
        task = asyncio.ensure_future(self._continue(explanation, token_ids, generate, replied))
        self._continuations[explanation.result_id] = task
        task.add_done_callback(lambda t: self._continuation_done(explanation.result_id, t))

    async def _continue(
        self,
        explanation: Explanation,
        token_ids: list[int],
        generate: int,
        replied: asyncio.Future[None] | None,
    ) -> None:
        """Streams the continuation as `ecco/token`, after the explain reply (the extension takes tokens
        only for a result it already holds)."""
        if replied is not None:
            await replied
        task = asyncio.current_task()
        first_index = len(explanation.tokens)

        def on_event(event: Any) -> None:
            if event.name != "token":
                return
            token = adapter.streamed_token(
                event.content, first_index + event.content.get("position", 0) - len(token_ids)
            )
            explanation.tokens.append(token)
            self.ls.protocol.notify(
                TOKEN_NOTIFICATION, {"resultId": explanation.result_id, "token": token.to_json()}
            )

        params = {
            "model": explanation.model,
            "input_ids": [int(i) for i in token_ids],
            "generate": generate,
            "alternatives": adapter.ALTERNATIVES,
        }
        async with WorkProgress(
            self.ls,
            f"Ecco: generating {generate} tokens",
            on_cancel=lambda: task and task.cancel(),
            total_tokens=generate,
        ) as progress:
            await run_job(self.ls.link, "generate", params, progress, on_event)

    def _continuation_done(self, result_id: str, task: asyncio.Task[None]) -> None:
        if self._continuations.get(result_id) is task:
            del self._continuations[result_id]
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            message = error.message if isinstance(error, CommandFailed) else str(error)
            self.ls.log_to_client(f"Ecco: the continuation failed: {message}", types.MessageType.Error)
            if not isinstance(error, CommandFailed):
                self.ls.background_failure(error)

    def forget(self, explanations: Iterable[Explanation]) -> None:
        """Stops the continuations of explanations that were replaced or went stale."""
        for explanation in explanations:
            task = self._continuations.pop(explanation.result_id, None)
            if task is not None:
                task.cancel()

    async def close(self) -> None:
        tasks = list(self._continuations.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    # --------------------------------------------------------------------------------- recompute

    async def recompute(self, arguments: list[Any]) -> Any:
        if len(arguments) < 2 or not isinstance(arguments[0], str) or not isinstance(arguments[1], str):
            raise BadArguments("ecco.recompute takes (resultId, view, params)")
        result_id, view = arguments[0], arguments[1]
        params = arguments[2] if len(arguments) > 2 and isinstance(arguments[2], dict) else {}
        explanation = self.ls.results.get(result_id)
        if explanation is None:
            raise CommandFailed(
                f"no explained selection {result_id} (it was edited or replaced); explain it again",
                "NOT_FOUND",
            )
        analysis = explanation.analysis
        if analysis is None:
            raise CommandFailed(f"{result_id} kept no analysis to compute views from; explain it again")
        op, op_params = adapter.recompute_request(analysis, view, params)
        async with WorkProgress(self.ls, f"Ecco: computing {view}") as progress:
            answer = await run_job(self.ls.link, op, op_params, progress)
        return adapter.recompute_view_data(analysis, view, params, answer)
