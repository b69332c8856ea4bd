"""Several teacher-forced analyses in one forward pass: equal-length causal sequences stacked as (B, T).

Why: many users analysing text of the same token count on one model need the same forward, once per
request. Stacked, the model runs once; each request still gets exactly the ``AnalysisRun`` it would get
alone (scores, rankings, layer states and activations are split back per row; attributions, which need
their own backward passes, still run per request afterwards). Equal lengths mean no padding, so no row
can see another's tokens and no mask changes a row's numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ecco_daemon.analysis.architecture import Architecture, capture_io
from ecco_daemon.analysis.capture import EMBEDDING, Captured, _input_modules, resolve_layers
from ecco_daemon.analysis.errors import InvalidArgument
from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.analysis.progress import CancelCheck
from ecco_daemon.analysis.run import AnalysisRun, complete_run
from ecco_daemon.analysis.sequence import TokenSequence, build_sequence, embed_tokens, model_device, model_kwargs
from ecco_daemon.models.family import CAUSAL

MAX_JOINT_TOKENS = 8192  # rows x tokens in one stacked forward; more are split into several passes


@dataclass(frozen=True)
class JointRequest:
    """One request of a joint analysis: its causal token ids (every token after the first is scored), its
    options as the handler built them, and its own cancel check."""

    input_ids: Sequence[int]
    options: AnalysisOptions = field(default_factory=AnalysisOptions)
    check_cancelled: CancelCheck | None = field(default=None, compare=False)


def shareable(arch: Architecture, seqs: Sequence[TokenSequence]) -> bool:
    """Whether these sequences can share one unpadded forward: causal, and all of one length."""
    return (arch.family == CAUSAL and all(s.family == CAUSAL for s in seqs)
            and len({s.n_tokens for s in seqs}) <= 1)


def capture_joint(
    model: nn.Module, arch: Architecture, seqs: Sequence[TokenSequence], layers: Sequence[list[int]]
) -> list[Captured]:
    """One no-grad forward of the stacked sequences; per row what ``capture_forward`` would record.

    ``layers[b]`` are the MLP layers whose activations row ``b`` wants (the union is hooked once).
    """
    if not seqs:
        return []
    if not shareable(arch, seqs):
        raise InvalidArgument("a joint pass needs causal sequences of one length")
    device = model_device(model)
    hooked = sorted(set().union(*map(set, layers)))
    layer_modules = {str(i): layer for i, layer in enumerate(arch.decoder.layers)}
    embeds = torch.stack([embed_tokens(arch, seq, device) for seq in seqs])  # (B, T, H)
    kwargs = model_kwargs(seqs[0], embeds)
    with (
        torch.no_grad(),
        capture_io(layer_modules, inputs=False) as states,
        capture_io(_input_modules(arch, hooked), inputs=True) as acts,
    ):
        output = model(**kwargs)
    captured = []
    for row, wanted in enumerate(layers):
        hidden = torch.stack([states[str(i)][row] for i in range(arch.n_layers)]).float().cpu().numpy()
        activations = None
        if wanted:
            activations = torch.stack([acts[f"dec{i}"][row].float() for i in wanted]).cpu().numpy()
        captured.append(Captured(
            logits=output.logits[row],
            hidden=hidden,
            activations=activations,
            activation_layers=np.asarray(wanted, dtype=np.int64),
            attention=None,
            embedding=acts[EMBEDDING][row].float().cpu().numpy(),
        ))
    return captured


def _chunks(n_items: int, n_tokens: int) -> list[range]:
    per_pass = max(1, MAX_JOINT_TOKENS // max(1, n_tokens))
    return [range(start, min(n_items, start + per_pass)) for start in range(0, n_items, per_pass)]


def analyze_jointly(
    model: nn.Module, arch: Architecture, tokenizer: object, requests: Sequence[JointRequest]
) -> list[AnalysisRun | Exception]:
    """One run per request, the forward shared; a request's own error (too short, bad layer, attention asked, its
    attribution failing or being cancelled) is its entry in the list, the others are unaffected.

    Raises only when the shared forward itself fails; the caller then runs each request alone.
    """
    outcomes: list[AnalysisRun | Exception | None] = [None] * len(requests)
    ready: list[tuple[int, TokenSequence, list[int]]] = []
    for index, request in enumerate(requests):
        try:
            options = request.options
            if options.attention:
                raise InvalidArgument("a joint pass records no attention weights; run this analysis alone")
            layers = resolve_layers(arch, options.activation_layers) if options.activations else []
            ready.append((index, build_sequence(arch, tokenizer, request.input_ids), layers))
        except Exception as exc:
            outcomes[index] = exc
    if ready and not shareable(arch, [seq for _, seq, _ in ready]):
        raise InvalidArgument("a joint pass needs causal sequences of one length")
    n_tokens = ready[0][1].n_tokens if ready else 0
    for chunk in _chunks(len(ready), n_tokens):
        items = [ready[i] for i in chunk]
        captured = capture_joint(model, arch, [seq for _, seq, _ in items], [layers for *_, layers in items])
        for (index, seq, _), row in zip(items, captured, strict=True):
            request = requests[index]
            try:
                if request.check_cancelled is not None:
                    request.check_cancelled()
                outcomes[index] = complete_run(model, arch, tokenizer, seq, row, request.options,
                                               request.check_cancelled)
            except Exception as exc:
                outcomes[index] = exc
    assert all(outcome is not None for outcome in outcomes)
    return outcomes  # type: ignore[return-value]
