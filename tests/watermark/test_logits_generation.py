"""Watermarks made by transformers' generate on a tiny GPT-2 (built from a config, random weights) with a tokenizer
trained here on generated text: nothing is downloaded. Our detectors find the watermark at p <= 1e-6 and do not
find it in unwatermarked samples of the same model or under another key."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from distillguard.watermark.greenlist import GreenListWatermark  # noqa: E402
from distillguard.watermark.logits import LogitsWatermark, detect_any  # noqa: E402
from distillguard.watermark.synthid import SynthIDWatermark  # noqa: E402

SECRET = b"tiny-model deployment secret"
NEW_TOKENS = 200
# The words of the text the tokenizer is trained on.
WORD_LIST = (
    "the a an model api key token request answer question defence secret watermark green red list text "
    "data user server query attack extract distil copy network output input score account rate limit log "
    "proof hash seed sample teacher student prompt reply chat stream cache queue worker gateway policy "
    "review label alert"
)
WORDS = WORD_LIST.split()


def corpus(lines: int = 400) -> list[str]:
    rng = random.Random(7)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 16))) + rng.choice(".?!") for _ in range(lines)]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """A tiny model gains nothing from threads, and torch's thread pool spins badly on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<unk>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer)
    return tok


@pytest.fixture(scope="module")
def model(tokenizer: Any) -> Any:
    torch.manual_seed(0)
    eos = tokenizer.token_to_id("<eos>")
    config = transformers.GPT2Config(
        n_layer=2,
        n_head=2,
        n_embd=64,
        n_positions=512,
        vocab_size=tokenizer.get_vocab_size(),
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    return transformers.GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="module")
def prompt(tokenizer: Any) -> list[int]:
    ids: list[int] = tokenizer.encode("the gateway answers the question of the user").ids
    return ids


def generate(model: Any, prompt: list[int], samples: int, seed: int, **kwargs: Any) -> list[list[int]]:
    """``samples`` completions of NEW_TOKENS tokens each (the prompt cut off)."""
    torch.manual_seed(seed)
    ids = torch.tensor([prompt] * samples)
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=True,
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=NEW_TOKENS,
            **kwargs,
        )
    completions: list[list[int]] = out[:, len(prompt) :].tolist()
    return completions


@pytest.fixture(scope="module")
def unwatermarked(model: Any, prompt: list[int]) -> list[list[int]]:
    return generate(model, prompt, samples=20, seed=1)


def greenlist_for(model: Any, scope: str = "greenlist", **kwargs: Any) -> GreenListWatermark:
    kwargs.setdefault("bias", 3.0)
    return GreenListWatermark.from_secret(SECRET, scope, model.config.vocab_size, **kwargs)


def synthid_for(model: Any, scope: str = "synthid") -> SynthIDWatermark:
    return SynthIDWatermark.from_secret(SECRET, scope, model.config.vocab_size, depth=10, ngram_len=4)


def assert_detected(wm: LogitsWatermark, texts: list[list[int]], min_scored: float = 0.8 * NEW_TOKENS) -> None:
    for ids in texts:
        result = wm.detect(ids)
        assert result.detected and result.p_value <= 1e-6, result
        assert result.key_id == wm.key_id and result.scored > min_scored


def assert_not_detected(wm: LogitsWatermark, texts: list[list[int]]) -> None:
    results = [wm.detect(ids) for ids in texts]
    assert all(r.scored > 0.8 * NEW_TOKENS for r in results)
    assert not any(r.detected for r in results)
    assert min(r.p_value for r in results) > 1e-4, [r.p_value for r in results]


def test_tokenizer_and_model_are_local_and_tiny(tokenizer: Any, model: Any, unwatermarked: list[list[int]]) -> None:
    assert 300 <= tokenizer.get_vocab_size() <= 512
    assert sum(p.numel() for p in model.parameters()) < 200_000
    assert all(len(ids) == NEW_TOKENS for ids in unwatermarked)
    assert tokenizer.decode(unwatermarked[0]).strip()


# -- green list ------------------------------------------------------------------------------------------------------


def test_greenlist_from_vanilla_transformers_config_is_detected(
    model: Any, prompt: list[int], unwatermarked: list[list[int]]
) -> None:
    wm = greenlist_for(model)
    config = transformers.WatermarkingConfig(**wm.transformers_kwargs())  # the vanilla config, not ours
    marked = generate(model, prompt, samples=4, seed=2, watermarking_config=config)
    assert_detected(wm, marked)
    assert_not_detected(wm, unwatermarked)
    assert_not_detected(greenlist_for(model, scope="another key"), marked)
    held = [greenlist_for(model, scope=f"old key {i}") for i in range(3)] + [wm]
    best = detect_any(held, marked[0])
    assert best.key_id == wm.key_id and best.keys_tried == 4 and best.detected


def test_greenlist_config_and_processor_routes_are_detected(model: Any, prompt: list[int]) -> None:
    wm = greenlist_for(model, context_width=2)
    via_config = generate(model, prompt, samples=2, seed=3, generation_config=wm.generation_config())
    via_processor = generate(
        model, prompt, samples=2, seed=4, logits_processor=transformers.LogitsProcessorList([wm.processor()])
    )
    assert_detected(wm, via_config + via_processor)


def test_greenlist_selfhash_is_detected(model: Any, prompt: list[int], unwatermarked: list[list[int]]) -> None:
    wm = greenlist_for(model, seeding_scheme="selfhash", context_width=2, bias=4.0)
    marked = generate(model, prompt, samples=2, seed=5, watermarking_config=wm.watermarking_config())
    # selfhash boosts only candidates among the top 40 that are green under their own seed: text repeats more.
    assert_detected(wm, marked, min_scored=100)
    assert_not_detected(wm, unwatermarked)


def test_green_list_agrees_with_transformers_detector_on_generated_text(model: Any, prompt: list[int]) -> None:
    wm = greenlist_for(model)
    marked = generate(model, prompt, samples=2, seed=6, watermarking_config=wm.watermarking_config())
    detector = transformers.WatermarkDetector(
        model.config, "cpu", transformers.WatermarkingConfig(**wm.transformers_kwargs()), ignore_repeated_ngrams=True
    )
    theirs = detector(torch.tensor(marked), return_dict=True)
    for row, ids in enumerate(marked):
        assert wm.score(ids) == (theirs.num_tokens_scored[row], theirs.num_green_tokens[row])


# -- SynthID --------------------------------------------------------------------------------------------------------


def test_synthid_from_vanilla_transformers_config_is_detected(
    model: Any, prompt: list[int], unwatermarked: list[list[int]]
) -> None:
    wm = synthid_for(model)
    config = transformers.SynthIDTextWatermarkingConfig(**wm.transformers_kwargs())
    marked = generate(model, prompt, samples=4, seed=7, watermarking_config=config)
    assert_detected(wm, marked)
    assert_not_detected(wm, unwatermarked)
    assert_not_detected(synthid_for(model, scope="another key"), marked)
    for ids in marked:
        assert wm.g_values(ids).mean() > 0.6  # tournament sampling raised the share of g = 1 from ~0.5


def test_synthid_processor_route_is_detected(model: Any, prompt: list[int]) -> None:
    wm = synthid_for(model)
    marked = generate(
        model, prompt, samples=2, seed=8, logits_processor=transformers.LogitsProcessorList([wm.processor()])
    )
    assert_detected(wm, marked)


# -- per-request processors (a serving engine's hook) -------------------------------------------------------------


def sample_with(
    apply: Callable[[list[int], list[int], Any], Any], model: Any, prompt: list[int], seed: int
) -> list[int]:
    """A serving engine's loop, one request: logits of the last position -> per-request processor -> sample."""
    torch.manual_seed(seed)
    output: list[int] = []
    with torch.no_grad():
        for _ in range(NEW_TOKENS):
            logits = model(torch.tensor([prompt + output])).logits[0, -1]
            logits = apply(prompt, output, logits)
            output.append(int(torch.multinomial(torch.softmax(logits, dim=-1), 1)))
    return output


@pytest.mark.parametrize("make", [greenlist_for, synthid_for])
def test_request_processor_watermarks_a_serving_loop(make: Any, model: Any, prompt: list[int]) -> None:
    wm = make(model)
    assert_detected(wm, [sample_with(wm.request_processor(), model, prompt, seed=9)])


def test_request_processor_equals_transformers_step_by_step(model: Any, prompt: list[int]) -> None:
    """Fed the same logits, the per-request processor returns what transformers' processor returns on the whole
    sequence, step after step, and after an out-of-step call (replay) as well."""
    vocab = model.config.vocab_size
    rng = torch.Generator().manual_seed(0)
    for wm in (greenlist_for(model, context_width=2), synthid_for(model)):
        theirs = wm.processor()
        ours = wm.request_processor()
        output: list[int] = []
        for _ in range(30):
            logits = torch.randn(vocab, generator=rng)
            expected = theirs(torch.tensor([prompt + output]), logits.unsqueeze(0))[0]
            assert torch.equal(ours(prompt, output, logits), expected)
            output.append(int(torch.randint(vocab, (1,), generator=rng)))
        replayed = wm.request_processor()
        logits = torch.randn(vocab, generator=rng)
        expected = theirs(torch.tensor([prompt + output]), logits.unsqueeze(0))[0]
        assert torch.equal(replayed(prompt, output, logits), expected)


def test_our_processors_equal_vanilla_transformers_on_cpu(model: Any, prompt: list[int]) -> None:
    vocab = model.config.vocab_size
    scores = torch.randn(3, vocab, generator=torch.Generator().manual_seed(1))
    ids = torch.tensor([prompt, prompt[::-1], prompt[1:] + prompt[:1]])
    for wm, vanilla in (
        (greenlist_for(model), transformers.WatermarkingConfig),
        (greenlist_for(model, seeding_scheme="selfhash", context_width=3), transformers.WatermarkingConfig),
        (synthid_for(model), transformers.SynthIDTextWatermarkingConfig),
    ):
        expected = vanilla(**wm.transformers_kwargs()).construct_processor(vocab, "cpu")(ids, scores)
        assert torch.equal(wm.processor()(ids, scores), expected)
        assert isinstance(wm.watermarking_config(), vanilla)
        assert not torch.equal(expected, scores)  # the watermark does change the scores
