"""Solo decoding over a static cache, compiled or not, gives the eager loop's steps; failures fall back.

Two routes to the same numbers (as inseq's consistency tests): each request runs through the eager
dynamic-cache loop (compile_decode "off") and through the static cache with the step compiled by dynamo
on the CPU (backend "eager" or "aot_eager"; CUDA graphs need a GPU), over the same weights.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from ecco_daemon.generation.decoding import GenerationOutput, SamplingParams, Step, generate
from ecco_daemon.generation.static_cache import (
    CompileOptions,
    StaticDecoder,
    cache_kwargs,
    cache_length,
    install_static_decoder,
    static_decoder,
    wants_static_decoding,
)
from ecco_daemon.models import ModelLoadError, load_model
from ecco_daemon.models.cache import ModelCache
from ecco_daemon.models.family import ENCODER_DECODER
from ecco_daemon.models.loaded import LoadedModel
from ecco_daemon.models.options import parse_compile_decode
from tests.tiny_models import load_tiny_model

PROMPTS = ["The capital of France is", "Hello", "A language model predicts the next token from the tokens"]
UNCOMPILED = CompileOptions(backend=None)
DYNAMO = CompileOptions(backend="eager", mode=None)
SAMPLED = SamplingParams(do_sample=True, temperature=1.3, top_k=40, top_p=0.95, seed=7)


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    """One model per family for the module: a compiled step is then reused by every test on it."""
    return {family: load_tiny_model(family, "sdpa")[0] for family in ("llama", "gpt2")}


def wrap(models: dict[str, torch.nn.Module], family: str, setting: str = "off",
         stop_ids: frozenset[int] = frozenset()) -> LoadedModel:
    _, tokenizer = load_tiny_model(family, "sdpa")
    return LoadedModel(family, family, models[family], tokenizer, torch.device("cpu"), torch.float32, 0.0,
                       stop_ids, compile_decode=setting)


def static(models: dict[str, torch.nn.Module], family: str, options: CompileOptions,
           stop_ids: frozenset[int] = frozenset()) -> tuple[LoadedModel, StaticDecoder]:
    lm = wrap(models, family, "on", stop_ids)
    return lm, install_static_decoder(lm, options)


def encode(lm: LoadedModel, text: str) -> list[int]:
    return lm.tokenizer(text)["input_ids"]


def assert_same_steps(got: GenerationOutput, expected: GenerationOutput) -> None:
    assert got.generated_ids == expected.generated_ids
    assert got.stop_reason == expected.stop_reason
    assert [s.prob for s in got.steps] == pytest.approx([s.prob for s in expected.steps], abs=1e-5)
    assert [s.top_ids.tolist() for s in got.steps] == [s.top_ids.tolist() for s in expected.steps]
    for mine, theirs in zip(got.steps, expected.steps, strict=True):
        assert mine.top_probs.tolist() == pytest.approx(theirs.top_probs.tolist(), abs=1e-5)


@pytest.mark.parametrize("options", [UNCOMPILED, DYNAMO], ids=["uncompiled", "dynamo"])
@pytest.mark.parametrize("family", ["llama", "gpt2"])
@pytest.mark.parametrize("sampling", [SamplingParams(), SAMPLED], ids=["greedy", "seeded-sampling"])
def test_static_cache_gives_the_eager_tokens_and_probabilities(models, family, options, sampling):
    eager = wrap(models, family)
    lm, decoder = static(models, family, options)
    for prompt in PROMPTS:
        expected = generate(eager, encode(eager, prompt), 10, sampling, alternatives=4)
        assert_same_steps(generate(lm, encode(lm, prompt), 10, sampling, alternatives=4), expected)
    assert decoder.steps == 9 * len(PROMPTS) and not decoder.failed  # the prompt's step is the prefill


def test_aot_eager_compiled_steps_give_the_eager_tokens(models):
    eager = wrap(models, "llama")
    lm, decoder = static(models, "llama", CompileOptions(backend="aot_eager", mode=None))
    ids = encode(lm, PROMPTS[0])
    assert_same_steps(generate(lm, ids, 8, SamplingParams()), generate(eager, ids, 8, SamplingParams()))
    assert decoder.steps == 7


def test_stop_tokens_end_both_paths_at_the_same_step(models):
    ids = encode(wrap(models, "llama"), PROMPTS[2])
    greedy = generate(wrap(models, "llama"), ids, 8, SamplingParams()).generated_ids
    stop = frozenset({greedy[2]})
    expected = generate(wrap(models, "llama", stop_ids=stop), ids, 8, SamplingParams())
    lm, decoder = static(models, "llama", DYNAMO, stop_ids=stop)
    got = generate(lm, ids, 8, SamplingParams())
    assert_same_steps(got, expected)
    assert got.stop_reason == "stop_token" and got.generated_ids == greedy[: greedy.index(greedy[2]) + 1]
    with torch.inference_mode():
        steps = decoder.open(10)
    assert steps is not None, "the cache is free again for the next request"
    steps.close()


class Stop(Exception):
    pass


def streamed_until_cancelled(lm: LoadedModel, ids: list[int], after: int) -> list[int]:
    streamed: list[int] = []
    checks = iter(range(100))

    def check_cancelled() -> None:
        if next(checks) == after:
            raise Stop

    def on_step(index: int, step: Step) -> None:
        streamed.append(step.token_id)

    with pytest.raises(Stop):
        generate(lm, ids, 12, SamplingParams(), on_step=on_step, check_cancelled=check_cancelled)
    return streamed


def test_cancellation_stops_both_paths_at_the_same_step_and_frees_the_cache(models):
    eager = wrap(models, "gpt2")
    lm, decoder = static(models, "gpt2", DYNAMO)
    ids = encode(lm, PROMPTS[0])
    expected = streamed_until_cancelled(eager, ids, after=4)
    assert streamed_until_cancelled(lm, ids, after=4) == expected and len(expected) == 4
    before = decoder.steps
    assert_same_steps(generate(lm, ids, 5, SamplingParams()), generate(eager, ids, 5, SamplingParams()))
    assert decoder.steps == before + 4, "the next request decodes over the static cache again"


def flaky_backend(fail_at_call: int | None, fail_compile: bool = False) -> tuple[Callable[..., Any], list[int]]:
    """A dynamo backend that fails to compile, or whose compiled step raises on its n-th run."""
    calls: list[int] = []

    def backend(graph: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
        if fail_compile:
            raise RuntimeError("no compiler here")

        def run(*args: Any) -> Any:
            calls.append(1)
            if len(calls) == fail_at_call:
                raise RuntimeError("the graph broke")
            return graph.forward(*args)

        return run

    return backend, calls


@pytest.mark.parametrize("sampling", [SamplingParams(), SAMPLED], ids=["greedy", "seeded-sampling"])
@pytest.mark.parametrize("fail_at, fail_compile", [(3, False), (None, True)], ids=["step-fails", "compile-fails"])
def test_a_failing_static_path_falls_back_to_eager_for_good_with_the_same_tokens(
        models, caplog, sampling, fail_at, fail_compile):
    eager = wrap(models, "llama")
    backend, calls = flaky_backend(fail_at, fail_compile)
    lm, decoder = static(models, "llama", CompileOptions(backend=backend, mode=None))
    ids = encode(lm, PROMPTS[1])
    with caplog.at_level(logging.WARNING, logger="ecco_daemon.generation.static_cache"):
        got = generate(lm, ids, 10, sampling, alternatives=3)
        again = generate(lm, ids, 10, sampling, alternatives=3)
    expected = generate(eager, ids, 10, sampling, alternatives=3)
    assert_same_steps(got, expected)
    assert_same_steps(again, expected)
    assert decoder.failed and static_decoder(lm) is None
    assert len(calls) == (fail_at or 0), "after the failure nothing more runs through the static path"
    assert len([r for r in caplog.records if "decodes eagerly from now on" in r.message]) == 1


def test_running_out_of_memory_fails_the_request_but_keeps_the_static_path(models):
    def out_of_memory_once(graph: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            if not raised:
                raised.append(1)
                raise torch.cuda.OutOfMemoryError("CUDA out of memory")
            return graph.forward(*args)

        return run

    raised: list[int] = []
    lm, decoder = static(models, "gpt2", CompileOptions(backend=out_of_memory_once, mode=None))
    ids = encode(lm, PROMPTS[0])
    with pytest.raises(torch.cuda.OutOfMemoryError):
        generate(lm, ids, 5, SamplingParams())
    assert not decoder.failed and static_decoder(lm) is decoder
    assert_same_steps(generate(lm, ids, 5, SamplingParams()), generate(wrap(models, "gpt2"), ids, 5, SamplingParams()))
    assert decoder.steps == 4, "the cache was released, and the next request used it"


def test_graphs_are_reused_across_requests_of_one_cache_length(models):
    graphs: list[int] = []

    def counting(graph: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
        graphs.append(1)
        return graph.forward

    lm, decoder = static(models, "llama", CompileOptions(backend=counting, mode=None))
    for prompt, n in [(PROMPTS[0], 6), (PROMPTS[2], 9), (PROMPTS[1], 3)]:  # all within 256 positions
        generate(lm, encode(lm, prompt), n, SamplingParams())
    assert len(graphs) == 1 and decoder.steps == 5 + 8 + 2
    long_prompt = (encode(lm, PROMPTS[2]) * 30)[:252]
    generate(lm, long_prompt, 6, SamplingParams())  # 258 positions: the 512 cache, one more graph
    assert len(graphs) == 2


def test_cache_lengths_are_powers_of_two_from_256():
    assert [cache_length(n) for n in (1, 200, 256, 257, 1000, 4096, 4097)] == [256, 256, 256, 512, 1024, 4096, 8192]


def test_the_setting_device_and_architecture_decide_where_the_static_path_runs(models):
    assert static_decoder(wrap(models, "llama", "off")) is None
    assert static_decoder(wrap(models, "llama", "auto")) is None  # auto: CUDA only
    assert isinstance(static_decoder(wrap(models, "llama", "on")), StaticDecoder)
    on_cuda = dataclasses.replace(wrap(models, "gpt2", "auto"), device=torch.device("cuda"))
    assert wants_static_decoding(on_cuda)
    t5, tokenizer = load_tiny_model("t5", None)
    seq2seq = LoadedModel("t5", "t5", t5, tokenizer, torch.device("cpu"), torch.float32, 0.0, frozenset(),
                          family=ENCODER_DECODER, compile_decode="on")
    assert static_decoder(seq2seq) is None
    windowed_model, tokenizer = load_tiny_model("llama", "sdpa")
    windowed_model.config.sliding_window = 16
    windowed = LoadedModel("w", "w", windowed_model, tokenizer, torch.device("cpu"), torch.float32, 0.0,
                           frozenset(), compile_decode="on")
    assert static_decoder(windowed) is None
    with pytest.raises(ValueError, match="static cache"):
        install_static_decoder(seq2seq, DYNAMO)


def test_encoder_decoder_generation_still_runs_eagerly():
    t5, tokenizer = load_tiny_model("t5", None)
    lm = LoadedModel("t5", "t5", t5, tokenizer, torch.device("cpu"), torch.float32, 0.0, frozenset(),
                     family=ENCODER_DECODER, compile_decode="on")
    out = generate(lm, tokenizer("Hello world")["input_ids"], 4, SamplingParams())
    assert len(out.generated_ids) == 4


def test_compile_decode_is_a_load_option(tiny_model_factory, tmp_path: Path):
    assert parse_compile_decode(None) == "auto" and parse_compile_decode(" ON ") == "on"
    with pytest.raises(ModelLoadError, match="compile_decode"):
        parse_compile_decode("sometimes")
    lm = load_model(str(tiny_model_factory("llama")), progress=False, cache=ModelCache(tmp_path / "cache"),
                    compile_decode="off")
    assert lm.compile_decode == "off"


def test_the_cache_argument_takes_the_name_this_transformers_uses(models):
    class Older(torch.nn.Module):
        def forward(self, input_ids=None, past_key_values=None, use_cache=None):  # transformers before 5.2x
            return None

    assert list(cache_kwargs(Older(), "c")) == ["past_key_values"]
    (name,) = cache_kwargs(models["llama"], "c")
    assert name in inspect.signature(type(models["llama"]).forward).parameters
