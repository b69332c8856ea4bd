"""Logit lens, rankings and teacher-forced scores against the model's own outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecco_daemon.analysis.architecture import inspect_architecture
from ecco_daemon.analysis.errors import InvalidArgument
from ecco_daemon.analysis.options import AnalysisOptions
from ecco_daemon.analysis.run import run_analysis
from ecco_daemon.analysis.sequence import model_kwargs
from ecco_daemon.models.family import ENCODER_DECODER
from tests.analysis_inputs import text_sequence
from tests.tiny_models import load_tiny_model

TEXTS = {
    "gpt2": ("The capital of France is Paris.", None),
    "llama": ("The quick brown fox jumps over the lazy dog.", None),
    "gpt_neox": ("Hello world, the cat sat.", None),
    "bert": ("The capital of [MASK] is [MASK].", None),
    "t5": ("The capital of France is", "Paris is nice."),
}


@pytest.fixture(scope="module", params=list(TEXTS))
def analysed(request):
    family = request.param
    model, tokenizer = load_tiny_model(family)
    arch = inspect_architecture(model)
    text, target = TEXTS[family]
    seq = text_sequence(arch, tokenizer, text, target=target)
    run = run_analysis(model, arch, tokenizer, seq, AnalysisOptions(activations=False))
    return family, model, tokenizer, arch, run


def _model_logits(model, tokenizer, run) -> torch.Tensor:
    """The model's logits from plain token ids, independent of the analysis code: (R, V)."""
    ids = torch.as_tensor(run.seq.token_ids)[None]
    with torch.no_grad():
        if run.seq.family == ENCODER_DECODER:
            n = run.seq.n_encoder
            return model(input_ids=ids[:, :n], decoder_input_ids=ids[:, n:]).logits[0]
        return model(input_ids=ids).logits[0]


def test_last_layer_of_the_lens_is_the_model_output(analysed) -> None:
    _family, model, tokenizer, arch, run = analysed
    logits = _model_logits(model, tokenizer, run)
    lens = arch.lens_logits(torch.as_tensor(run.hidden[-1]))
    torch.testing.assert_close(lens, logits, atol=1e-4, rtol=1e-4)
    for position in run.seq.predictable_positions():
        row = run.seq.prediction_row(position)
        predictions = run.layer_predictions(position, topk=5)
        assert predictions.token_ids.shape == (arch.n_layers, 5)
        assert predictions.token_ids[-1].tolist() == logits[row].topk(5).indices.tolist()
        np.testing.assert_allclose(
            predictions.probs[-1], torch.softmax(logits[row], -1).topk(5).values, atol=1e-5
        )


def test_intermediate_layers_use_their_own_norm_statistics(analysed) -> None:
    family, model, tokenizer, arch, run = analysed
    ids = torch.as_tensor(run.seq.token_ids)[None]
    with torch.no_grad():
        if family == "t5":
            n = run.seq.n_encoder
            output = model(input_ids=ids[:, :n], decoder_input_ids=ids[:, n:], output_hidden_states=True)
            first_layer = output.decoder_hidden_states[1][0]  # (embeddings, layer 0, ...)
            normed = model.decoder.final_layer_norm(first_layer) * model.config.d_model**-0.5
            expected = model.lm_head(normed)
        else:
            first_layer = model(input_ids=ids, output_hidden_states=True).hidden_states[1][0]
            if family == "bert":  # post-norm: no final norm, the whole prediction head
                expected = model.cls(first_layer)
            else:
                expected = model.get_output_embeddings()(arch.final_norm(first_layer))
    np.testing.assert_allclose(run.hidden[0], first_layer.numpy(), atol=1e-5)
    torch.testing.assert_close(
        arch.lens_logits(torch.as_tensor(run.hidden[0])), expected, atol=1e-4, rtol=1e-4
    )


def test_rankings_agree_with_layer_predictions_and_watch(analysed) -> None:
    _family, _model, _tokenizer, arch, run = analysed
    assert run.rankings.shape == (arch.n_layers, run.seq.n_targets)
    assert run.rankings.min() >= 1 and run.rankings.max() <= arch.vocab_size
    for n, position in enumerate(run.seq.target_positions):
        position = int(position)
        target = int(run.seq.target_ids[n])
        watch = run.rankings_watch([target, 5], position)
        assert watch.shape == (arch.n_layers, 2)
        np.testing.assert_array_equal(watch[:, 0], run.rankings[:, n])
        top = run.layer_predictions(position, topk=1).token_ids[:, 0]
        np.testing.assert_array_equal(run.rankings[:, n] == 1, top == target)
        assert (run.rankings_watch(top[:1].tolist(), position)[0] == 1).all()


def test_scores_against_softmax_of_model_logits(analysed) -> None:
    _family, model, tokenizer, _arch, run = analysed
    logits = _model_logits(model, tokenizer, run)
    rows = run.seq.target_rows
    probs = torch.softmax(logits[rows], -1).numpy()
    targets = run.seq.target_ids
    np.testing.assert_allclose(run.scores.probs, probs[np.arange(len(rows)), targets], rtol=1e-4, atol=1e-7)
    expected_rank = (probs > probs[np.arange(len(rows)), targets][:, None]).sum(-1) + 1
    np.testing.assert_array_equal(run.scores.ranks, expected_rank)
    entropy = -(probs * np.log(probs)).sum(-1)
    np.testing.assert_allclose(run.scores.entropy, entropy, rtol=1e-4)
    assert (np.diff(run.scores.topk_probs, axis=1) <= 0).all()
    np.testing.assert_array_equal(run.scores.topk_ids[:, 0], probs.argmax(-1))
    np.testing.assert_array_equal(run.rankings[-1], run.scores.ranks)


def test_causal_scores_every_token_after_the_first() -> None:
    model, tokenizer = load_tiny_model("gpt2")
    arch = inspect_architecture(model)
    seq = text_sequence(arch, tokenizer, "The cat sat on the mat.")
    assert seq.target_positions.tolist() == list(range(1, seq.n_tokens))
    run = run_analysis(model, arch, tokenizer, seq)
    assert run.scores.probs.shape == (seq.n_tokens - 1,)
    assert run.layer_predictions(seq.n_tokens).token_ids.shape[0] == arch.n_layers  # the next token
    with pytest.raises(InvalidArgument, match="valid positions are 1.."):
        run.layer_predictions(0)
    with pytest.raises(InvalidArgument, match="layer 9 out of range"):
        run.layer_predictions(1, layer=9)
    assert run.layer_predictions(2, layer=-1).layers.tolist() == [arch.n_layers - 1]
    with pytest.raises(InvalidArgument, match="token ids"):
        run.rankings_watch([10**6], 2)


def test_masked_targets_default_to_the_model_prediction() -> None:
    model, tokenizer = load_tiny_model("bert")
    arch = inspect_architecture(model)
    seq = text_sequence(arch, tokenizer, "The [MASK] sat on the mat.")
    run = run_analysis(model, arch, tokenizer, seq)
    embeds = arch.input_embedding(torch.as_tensor(seq.token_ids))[None]
    with torch.no_grad():
        logits = model(**model_kwargs(seq, embeds)).logits[0]
    mask_position = int(seq.target_positions[0])
    assert seq.token_ids[mask_position] == tokenizer.mask_token_id
    assert run.seq.target_ids[0] == int(logits[mask_position].argmax())
    assert run.scores.ranks[0] == 1
    predictions = run.layer_predictions(mask_position, topk=3)
    assert predictions.token_ids[-1, 0] == run.seq.target_ids[0]


def test_rankings_in_small_chunks_equal_one_pass(analysed, monkeypatch) -> None:
    from ecco_daemon.analysis import logit_lens

    _family, _model, _tokenizer, arch, run = analysed
    monkeypatch.setattr(logit_lens, "ELEMENTS_PER_PROJECTION", 1)  # one row at a time
    chunked = logit_lens.rankings(arch, run.hidden, run.seq.target_rows, run.seq.target_ids)
    np.testing.assert_array_equal(chunked, run.rankings)


def test_the_lens_table_gives_what_projecting_each_row_gives(analysed) -> None:
    """Two routes to layer predictions and ranks agree: the table projected once per run, and a fresh
    projection of one row (the route a view asking for more than the table's k takes)."""
    from ecco_daemon.analysis import logit_lens

    _family, _model, _tokenizer, arch, run = analysed
    assert run.lens is not None and run.lens.k == min(logit_lens.TABLE_K, arch.vocab_size)
    for position in run.seq.predictable_positions():
        row = run.seq.prediction_row(position)
        table = run.layer_predictions(position, topk=5)
        direct = logit_lens.layer_predictions(arch, run.hidden, row, position, 5, actual=run.actual_at(position))
        np.testing.assert_array_equal(table.token_ids, direct.token_ids)
        np.testing.assert_allclose(table.probs, direct.probs, rtol=1e-5, atol=1e-7)
        assert table.actual_id == direct.actual_id
        if direct.actual_id is not None:
            np.testing.assert_array_equal(table.actual_ranks, direct.actual_ranks)
            np.testing.assert_allclose(table.actual_probs, direct.actual_probs, rtol=1e-5, atol=1e-7)
        one = run.layer_predictions(position, topk=3, layer=-1)
        np.testing.assert_array_equal(one.token_ids, direct.token_ids[-1:, :3])
    ranks = logit_lens.lens_pass(arch, run.hidden, run.seq.target_rows, run.seq.target_ids, table_k=0)[1]
    np.testing.assert_array_equal(ranks, run.rankings)
    for n, (row, target) in enumerate(zip(run.seq.target_rows, run.seq.target_ids, strict=True)):
        watched = run.rankings_watch([int(target)], run.seq.target_positions[n])[:, 0]
        np.testing.assert_array_equal(watched, run.rankings[:, n])
        again = logit_lens.rankings_watch(arch, run.hidden, int(row), np.asarray([int(target)]))[:, 0]
        np.testing.assert_array_equal(again, watched)  # from the recent rows


def test_a_run_without_rankings_projects_its_rows_on_first_use(analysed) -> None:
    family, model, tokenizer, arch, run = analysed
    text, target = TEXTS[family]
    lazy = run_analysis(model, arch, tokenizer, text_sequence(arch, tokenizer, text, target=target),
                        AnalysisOptions(activations=False, rankings=False))
    assert lazy.rankings is None and lazy.lens is None
    position = lazy.seq.predictable_positions()[0]
    np.testing.assert_array_equal(lazy.layer_predictions(position, 4).token_ids,
                                  run.layer_predictions(position, 4).token_ids)
    assert lazy.lens is not None and lazy.rankings is not None
    np.testing.assert_array_equal(lazy.layer_rankings(), run.rankings)
