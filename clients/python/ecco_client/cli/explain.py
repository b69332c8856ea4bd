"""`ecco-client explain`: a text's tokens colored by probability and saliency, the numbers beside them,
as JSON with ``--json``, and one self-contained page with every view with ``--html``; with
``--generate N`` the text is first continued and the continuation explained. ``--foil`` makes the saliency
contrastive, ``--watch`` adds the watched tokens' ranks, ``--attention`` the attention view to the page."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console

from ecco_client.cli.errors import CommandError
from ecco_client.cli.progress_bar import RichProgress
from ecco_client.render.terminal import probability_table, rankings_watch_table, saliency_table, terminal_view


def explain(client: Any, args: argparse.Namespace, console: Console, progress: RichProgress) -> int:
    lm = client.model(args.model)
    if args.target is not None:
        n_tokens = len(lm.encode_tokens(args.text)["input_ids"][0]) + args.generate
        if not 1 <= args.target < n_tokens:
            raise CommandError(f"--target {args.target} is not a token of this text: it has {n_tokens} tokens, "
                               f"so --target takes 1 to {n_tokens - 1} (0 is never predicted)")
    if args.attention and args.html is None:
        raise CommandError("--attention puts the attention view in the page: give --html FILE too")
    # A foil alone asks for Ecco's contrastive saliency (grad_x_input of the contrast); with --attribution,
    # that method attributes the contrast.
    method = args.attribution or ("contrastive" if args.foil else None)
    methods = [method] if method else []
    options = {"foils": [args.foil]} if args.foil else {}
    with progress:
        if args.generate > 0:  # Ecco's own demo: generate, then explain the continuation
            out = lm.generate(args.text, generate=args.generate, attribution=methods, steps=args.steps,
                              analyze=True, on_progress=progress, progress=False, **options)
        else:
            out = lm.analyze(args.text, attribution=methods, steps=args.steps, on_progress=progress,
                             progress=False, **options)
    probability = out.token_probabilities().data
    saliency = out.primary_attributions(method).data if method else None
    target = _target(saliency, args.target, first=args.generate > 0)
    watch = out.rankings_watch(args.watch, target or len(out.tokens) - 1) if args.watch else None
    if args.json:
        document = explanation_json(out.model, probability, saliency, target, watch.data if watch else None)
        print(json.dumps(document, indent=2))
    else:
        console.print(terminal_view("probability", probability, scale="surprisal" if args.surprisal else "probability"))
        console.print(probability_table(probability))
        if saliency is not None:
            console.print(terminal_view("saliency", saliency, target=target))
            console.print(saliency_table(saliency, target=target))
        if watch is not None:
            console.print(rankings_watch_table(watch.data))
    if args.html is not None:
        with progress:
            more = [spec for spec in (watch, out.attention() if args.attention else None) if spec is not None]
            path = out.to_html(args.html, *more)
        console.print(f"[bold]explanation page:[/bold] {path.resolve()}", soft_wrap=True)
    return 0


def _target(saliency: dict[str, Any] | None, wanted: int | None, first: bool = False) -> int | None:
    """The attributed position to show: ``--target``, checked against those attributed, else the last
    (``first``: the first, the first generated token)."""
    if saliency is None:
        if wanted is not None:
            raise CommandError("--target picks the token whose saliency is shown; give --attribution too")
        return None
    targets = [int(t) for t in saliency["methods"][0]["targets"]]
    if wanted is None:
        return targets[0] if first else targets[-1]
    if wanted not in targets:
        raise CommandError(f"--target {wanted} was not attributed; attributed positions: {targets}")
    return wanted


def explanation_json(model: str, probability: dict[str, Any], saliency: dict[str, Any] | None,
                     target: int | None, watch: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the colors show, as numbers: each token's probability, rank and alternatives, and saliency."""
    tokens = []
    tops = probability.get("top") or [None] * len(probability["tokens"])
    for index, (token, prob, rank, top) in enumerate(
            zip(probability["tokens"], probability["probs"], probability["ranks"], tops, strict=True)):
        tokens.append({"position": index, "text": token["text"], "id": token["id"], "probability": prob,
                       "rank": rank, "top": [{"text": c["text"], "probability": c["prob"]} for c in top or []]})
    document: dict[str, Any] = {"model": model, "tokens": tokens}
    if saliency is not None and target is not None:
        method = saliency["methods"][0]
        row = method["values"][list(method["targets"]).index(target)]
        document["saliency"] = {"method": method["name"], "target": target,
                                "values": [float(v or 0.0) for v in list(row)[:target]]}
        if method.get("foils"):
            document["saliency"]["foil"] = method["foils"][list(method["targets"]).index(target)]["text"]
    if watch is not None:
        document["rankings_watch"] = {
            "position": watch["position"], "tokens": [w["text"] for w in watch["watch"]],
            "ranks": [[int(rank) for rank in row] for row in watch["ranks"]]}  # (layers, watched)
    return document
