"""The panel's live views through the language server, against the real daemon and the tiny Llama: the
Attention tab (one layer embedded, the others asked for), the Rankings watch tab (watched texts, a text
of several tokens refused with the daemon's words), and contrastive saliency against a foil."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.lsp.lsp_session import Session, plain, whole_line

TEXT = "The cat sat on the mat and the dog sat on the rug.\n"


async def recompute(session: Session, result_id: str, view: str, params: dict[str, Any]) -> Any:
    return plain(
        await session.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="ecco.recompute", arguments=[result_id, view, params])
        )
    )


async def explain(session: Session, tmp_path: Path, options: dict[str, Any] | None = None) -> dict[str, Any]:
    uri = session.open(tmp_path / "doc.txt", TEXT)
    return await session.explain(uri, whole_line(0, TEXT.rstrip("\n")), options)


def tab(result: dict[str, Any], view: str) -> dict[str, Any]:
    return next(t for t in result["view"]["data"]["tabs"] if t["view"] == view)


async def test_attention_tab_embeds_one_layer_and_recomputes_another(session: Session, tmp_path: Path) -> None:
    result = await explain(session, tmp_path)
    attention = tab(result, "attention")
    assert attention["options"] == {"live": True}
    data = attention["data"]
    n_layers, n_tokens = data["n_layers"], len(result["tokens"])
    assert n_layers >= 2 and data["layers"] == [n_layers - 1]  # the last layer only
    weights = np.asarray(data["attention"])
    assert weights.shape == (1, len(data["heads"]), n_tokens, n_tokens)
    assert len(data["tokens"]) == n_tokens

    other = await recompute(session, result["resultId"], "attention", {"layer": 0, "tab": 6})
    assert other["layers"] == [0] and other["n_layers"] == n_layers
    first = np.asarray(other["attention"])
    assert first.shape == weights.shape
    np.testing.assert_allclose(first.sum(axis=-1), 1.0, atol=1e-3)  # each query's weights sum to 1
    assert np.allclose(np.triu(first[0, 0], k=1), 0.0)  # causal: nothing attends to later tokens
    assert not np.allclose(first, weights)  # another layer's weights

    with pytest.raises(JsonRpcException) as refused:
        await recompute(session, result["resultId"], "attention", {"layer": n_layers + 5})
    assert "layer" in refused.value.message and refused.value.data == {"daemonCode": "BAD_REQUEST"}


async def test_rankings_watch_ranks_watched_tokens_and_refuses_several(session: Session, tmp_path: Path) -> None:
    result = await explain(session, tmp_path)
    first = tab(result, "rankings_watch")
    assert first["options"] == {"live": True}
    n_tokens = len(result["tokens"])
    assert first["data"]["position"] == n_tokens - 1  # the last explained token, it and its rivals
    assert first["data"]["watch"][0]["text"] == result["tokens"][-1]["text"]
    assert first["data"]["positions"][-1] == n_tokens

    watched = await recompute(session, result["resultId"], "rankings-watch", {"position": 4, "watch": [" dog", " the"]})
    assert watched["position"] == 4 and [w["text"] for w in watched["watch"]] == [" dog", " the"]
    ranks = np.asarray(watched["ranks"])
    assert ranks.shape == (len(watched["layer_labels"]), 2) and (ranks >= 1).all()

    with pytest.raises(JsonRpcException) as refused:
        await recompute(session, result["resultId"], "rankings-watch",
                        {"position": 4, "watch": [" dog", " catapult dogma"]})
    assert "tokens" in refused.value.message and "' catapult dogma'" in refused.value.message
    assert refused.value.data == {"daemonCode": "BAD_REQUEST"}


async def test_explain_against_a_foil_gives_contrastive_saliency(session: Session, tmp_path: Path) -> None:
    result = await explain(session, tmp_path, {"attribution": ["grad_x_input"], "generate": 0, "foil": " dog"})
    methods = tab(result, "saliency")["data"]["methods"]
    assert [m["name"] for m in methods] == ["contrastive"]
    method = methods[0]
    assert len(method["foils"]) == len(method["targets"]) > 0
    assert {f["text"] for f in method["foils"]} == {" dog"}
    values = np.asarray(method["values"])
    assert values.shape == (len(method["targets"]), len(result["tokens"])) and np.isfinite(values).all()

    with pytest.raises(JsonRpcException) as refused:
        await explain(session, tmp_path, {"attribution": ["grad_x_input"], "generate": 0, "foil": " catapult dogma"})
    assert "foil" in refused.value.message and "tokens" in refused.value.message
    assert refused.value.data == {"daemonCode": "BAD_REQUEST"}
