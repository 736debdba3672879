"""Logits-watermark detectors without a model: keys, exact p-values, bad input, repeats, several keys, and the
green lists / g-values reproduced bit for bit against torch and transformers (those tests skip without them)."""

from __future__ import annotations

import math
import subprocess
import sys
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from distillguard.watermark.greenlist import (
    CHUNK,
    GreenListWatermark,
    GreenTable,
    green_masks_numpy,
    green_masks_torch,
    randperm_prefix,
)
from distillguard.watermark.logits import binomial_p_value, derive_key, detect_any, key_id
from distillguard.watermark.synthid import SynthIDWatermark

SECRET = b"deployment secret for tests"
V = 1_000


def greenlist(scope: str = "model-a", **kwargs: Any) -> GreenListWatermark:
    return GreenListWatermark.from_secret(SECRET, scope, V, **kwargs)


def synthid(scope: str = "model-a", **kwargs: Any) -> SynthIDWatermark:
    return SynthIDWatermark.from_secret(SECRET, scope, V, depth=10, **kwargs)


def biased_text(wm: GreenListWatermark, length: int, green_share: float, seed: int = 0) -> list[int]:
    """Token ids whose next token is picked green with probability green_share (a stand-in for a watermarked
    model), so the expected p-value is known."""
    rng = np.random.default_rng(seed)
    ids = [int(rng.integers(V))]
    for _ in range(length - 1):
        green = wm.greenlist_ids(ids[-1:])
        if rng.random() < green_share:
            ids.append(int(rng.choice(green)))
        else:
            ids.append(int(rng.choice(np.setdiff1d(np.arange(V), green))))
    return ids


# -- keys ------------------------------------------------------------------------------------------------------------


def test_derive_key_is_a_deterministic_63_bit_key_per_secret_and_scope() -> None:
    key = derive_key(SECRET, "greenlist/a")
    assert key == derive_key(SECRET, "greenlist/a")
    assert 0 < key < 2**63
    others = {derive_key(SECRET, "greenlist/b"), derive_key(b"another secret", "greenlist/a")}
    assert key not in others and len(others) == 2
    with pytest.raises(ValueError, match="empty"):
        derive_key(b"", "x")


def test_key_id_is_short_public_and_names_the_key() -> None:
    a, b = greenlist("a"), greenlist("b")
    assert len(a.key_id) == 12 and int(a.key_id, 16) >= 0
    assert a.key_id != b.key_id
    assert a.key_id == key_id("greenlist", a.hashing_key)
    assert str(a.hashing_key) not in a.key_id and str(a.hashing_key) not in repr(a)
    s = synthid()
    assert s.key_id == key_id("synthid", *s.keys) and len(s.keys) == 10


def test_key_out_of_int64_range_is_refused() -> None:
    with pytest.raises(ValueError, match="2\\*\\*63"):
        GreenListWatermark(V, 2**63)
    with pytest.raises(ValueError, match="2\\*\\*63"):
        SynthIDWatermark(V, [1, -1])


# -- exact p-values ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hits", "scored", "rate"), [(50, 200, 0.25), (80, 200, 0.25), (140, 200, 0.25), (200, 200, 0.25), (7, 10, 0.5)]
)
def test_binomial_p_value_is_the_exact_tail(hits: int, scored: int, rate: float) -> None:
    p = Fraction(rate)
    exact = sum(math.comb(scored, k) * p**k * (1 - p) ** (scored - k) for k in range(hits, scored + 1))
    assert binomial_p_value(hits, scored, rate) == pytest.approx(float(exact), rel=1e-9)


def test_exact_p_value_differs_from_the_normal_approximation_in_the_tail() -> None:
    # 80 green of 200 at gamma 0.25: z = 4.90, and the normal tail (transformers' p-value) says 4.8e-7, "detected"
    # at 1e-6; the exact binomial tail is 2.2e-6: not detected. The normal tail is too thin for a skewed binomial.
    z = (80 - 50) / math.sqrt(200 * 0.25 * 0.75)
    normal = 0.5 * math.erfc(z / math.sqrt(2))
    exact = binomial_p_value(80, 200, 0.25)
    assert normal < 1e-6 < exact
    assert exact == pytest.approx(2.2252e-6, rel=1e-4)


def test_nothing_scored_gives_p_one() -> None:
    assert binomial_p_value(0, 0, 0.25) == 1.0
    assert binomial_p_value(0, 10, 0.25) == 1.0


# -- bad and short input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [greenlist, synthid])
@pytest.mark.parametrize("ids", [[], [5], [5, 6, 7, 8]])
def test_empty_or_short_input_scores_nothing(make: Any, ids: list[int]) -> None:
    wm = make(context_width=5) if make is greenlist else make(ngram_len=5)
    result = wm.detect(ids)
    assert (result.scored, result.hits, result.p_value, result.detected, result.key_id) == (0, 0, 1.0, False, None)
    assert result.to_json()["detected"] is False


@pytest.mark.parametrize("make", [greenlist, synthid])
def test_ids_outside_the_vocabulary_are_refused(make: Any) -> None:
    wm = make()
    for bad in ([1, 2, -1, 4, 5, 6], [1, 2, V, 4, 5, 6], [[1, 2], [3, 4]], [1.5, 2.0, 3.0, 4.0, 5.0, 6.0]):
        with pytest.raises(ValueError, match="token ids"):
            wm.detect(bad)


def test_numpy_arrays_and_lists_give_the_same_result() -> None:
    wm = greenlist()
    ids = list(np.random.default_rng(3).integers(0, V, 300))
    assert wm.detect(ids) == wm.detect(np.array(ids, dtype=np.int32))


# -- detection ----------------------------------------------------------------------------------------------------


def test_biased_text_is_detected_and_random_text_is_not() -> None:
    wm = greenlist()
    marked = wm.detect(biased_text(wm, 200, green_share=0.7))
    assert marked.detected and marked.p_value < 1e-20 and marked.key_id == wm.key_id
    assert marked.scored >= 190 and marked.hits > 120 and marked.expected == pytest.approx(marked.scored * 0.25)
    rng = np.random.default_rng(1)
    p_values = [wm.detect(rng.integers(0, V, 200)).p_value for _ in range(200)]
    assert min(p_values) > 1e-4
    # Under the null the p-value is (conservatively) uniform: about 10% of texts fall at or below 0.1.
    assert 0.04 <= np.mean(np.array(p_values) <= 0.1) <= 0.16


def test_wrong_key_does_not_detect() -> None:
    right, wrong = greenlist("a"), greenlist("b")
    text = biased_text(right, 300, green_share=0.8)
    assert right.detect(text).detected
    result = wrong.detect(text)
    assert not result.detected and result.p_value > 1e-3


def test_repeated_token_scores_one_unit() -> None:
    assert greenlist().detect([7] * 500).scored == 1
    assert greenlist(context_width=3).detect([7] * 500).scored == 1
    assert greenlist(seeding_scheme="selfhash", context_width=2).detect([7] * 500).scored == 1
    assert greenlist().detect([1, 2, 3] * 200).scored == 3  # (1, 2), (2, 3) and (3, 1)
    s = synthid()
    assert s.detect([7] * 500).scored == s.depth  # one n-gram: one g-value per depth


def test_repeating_a_text_adds_no_evidence() -> None:
    wm = greenlist()
    text = biased_text(wm, 200, green_share=0.6)
    once, five_times = wm.detect(text), wm.detect(text * 5)
    assert five_times.scored <= once.scored + 1  # only the pair across the joint is new
    assert five_times.p_value >= once.p_value / 10


def test_units_are_seed_token_pairs_not_ngrams() -> None:
    # lefthash seeds with the last token only: with context_width 2, "x a b" and "y a b" are one unit (the same
    # green-list draw, the same answer); counting both would count one piece of evidence twice.
    text = [10, 1, 2, 11, 1, 2, 12, 1, 2]
    distinct_trigrams = {tuple(text[i - 2 : i + 1]) for i in range(2, len(text))}
    distinct_pairs = {tuple(text[i - 1 : i + 1]) for i in range(2, len(text))}
    assert (len(distinct_trigrams), len(distinct_pairs)) == (7, 5)
    assert greenlist(context_width=2).detect(text).scored == 5


def test_detect_any_reports_the_matching_key_with_a_bonferroni_correction() -> None:
    right = greenlist("right")
    held = [greenlist("w1"), right, greenlist("w2")]
    text = biased_text(right, 200, green_share=0.6)
    alone = right.detect(text)
    result = detect_any(held, text)
    assert result.key_id == right.key_id and result.keys_tried == 3 and result.detected
    assert result.p_value == pytest.approx(min(1.0, 3 * alone.p_value))
    assert result.to_json()["keys_tried"] == 3
    nothing = detect_any(held, np.random.default_rng(5).integers(0, V, 200))
    assert not nothing.detected and nothing.keys_tried == 3
    empty = detect_any(held, [])
    assert (empty.scored, empty.p_value, empty.key_id, empty.keys_tried) == (0, 1.0, None, 3)
    with pytest.raises(ValueError, match="no watermark"):
        detect_any([], text)


def test_bonferroni_correction_is_capped_at_one() -> None:
    held = [greenlist(f"k{i}") for i in range(20)]
    result = detect_any(held, np.random.default_rng(8).integers(0, V, 20))
    assert result.p_value <= 1.0 and result.keys_tried == 20


def test_synthid_null_rate_is_the_tables_exact_share_of_ones() -> None:
    s = synthid()
    assert s.null_rate == s.table.mean() and s.null_rate != 0.5 and abs(s.null_rate - 0.5) < 0.01
    rng = np.random.default_rng(2)
    p_values = [s.detect(rng.integers(0, V, 200)).p_value for _ in range(100)]
    assert min(p_values) > 1e-4


# -- green lists: our vectorised draw against torch's randperm -----------------------------------------------------


@pytest.mark.parametrize(("n", "g"), [(2, 1), (7, 3), (100, 99), (1000, 250), (1000, 1), (4096, 2048)])
def test_numpy_green_masks_equal_torch_randperm(n: int, g: int) -> None:
    torch = pytest.importorskip("torch")
    seeds = np.random.default_rng(n).integers(0, 2**32, 64, dtype=np.uint64).astype(np.uint32)
    seeds[:3] = [0, 1, 2**32 - 1]
    ours = green_masks_numpy(seeds, n, g)
    generator = torch.Generator()
    for row, seed in enumerate(seeds.tolist()):
        generator.manual_seed(seed)
        expected = np.zeros(n, dtype=bool)
        expected[torch.randperm(n, generator=generator)[:g].numpy()] = True
        assert np.array_equal(ours[row], expected), seed
    assert np.array_equal(green_masks_torch(seeds, n, g), ours)
    assert (ours.sum(axis=1) == g).all()


def test_numpy_green_masks_equal_torch_at_a_real_vocabulary_size() -> None:
    pytest.importorskip("torch")
    seeds = np.array([3, 15485863, 2**31 + 11], dtype=np.uint32)
    assert np.array_equal(green_masks_numpy(seeds, 50_257, 12_564), green_masks_torch(seeds, 50_257, 12_564))


def test_randperm_prefix_equals_torch() -> None:
    torch = pytest.importorskip("torch")
    for seed in (0, 15485863, 2**62 + 5):
        generator = torch.Generator()
        generator.manual_seed(seed)
        expected = torch.randperm(1_000_003, generator=generator)[:2000].numpy()
        assert np.array_equal(randperm_prefix(seed, 1_000_003, 2000), expected)


def test_green_table_cache_evicts_and_stays_exact() -> None:
    table = GreenTable(V, 250, engine="numpy", cache_bytes=2 * CHUNK * 125)  # room for 2 * CHUNK lists
    rng = np.random.default_rng(4)
    seeds = rng.integers(0, 2**32, 500, dtype=np.uint64).astype(np.uint32)
    seeds = np.concatenate([seeds, seeds[:50]])  # repeats inside one call
    tokens = rng.integers(0, V, len(seeds))
    expected = green_masks_numpy(seeds, V, 250)[np.arange(len(seeds)), tokens]
    assert np.array_equal(table.contains(seeds, tokens), expected)  # more seeds than room: used, not all kept
    assert table.cached == table.capacity == 2 * CHUNK
    for start in range(0, 500, 40):  # calls that each fit, and evict
        part = slice(start, start + 40)
        assert np.array_equal(table.contains(seeds[part], tokens[part]), expected[part])
        assert table.cached <= table.capacity
    assert table.evictions > 0
    big = GreenTable(V, 250, engine="numpy")
    assert np.array_equal(big.contains(seeds, tokens), expected)
    assert big.cached == 500 and big.evictions == 0
    assert np.array_equal(big.contains(seeds[::-1], tokens[::-1]), expected[::-1])
    assert big.cached == 500


def test_green_table_keeps_the_lists_used_most() -> None:
    table = GreenTable(V, 250, engine="numpy", cache_bytes=4 * CHUNK * 125)  # room for 4 * CHUNK lists
    rng = np.random.default_rng(9)
    hot = rng.integers(0, 2**32, 20, dtype=np.uint64).astype(np.uint32)
    tokens = np.zeros(20, dtype=np.int64)
    for _ in range(10):
        for _ in range(3):
            table.contains(hot, tokens)
        cold = rng.integers(0, 2**32, 60, dtype=np.uint64).astype(np.uint32)
        table.contains(cold, np.zeros(60, dtype=np.int64))
    assert table.evictions > 0
    assert (table._lookup(hot) >= 0).all()  # the common contexts survived every eviction


# -- against transformers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "width", "ratio"),
    [("lefthash", 1, 0.25), ("lefthash", 3, 0.5), ("selfhash", 1, 0.25), ("selfhash", 4, 0.3)],
)
def test_green_lists_equal_transformers(scheme: str, width: int, ratio: float) -> None:
    torch = pytest.importorskip("torch")
    logits_process = pytest.importorskip("transformers.generation.logits_process")
    wm = greenlist(seeding_scheme=scheme, context_width=width, greenlist_ratio=ratio)
    theirs = logits_process.WatermarkLogitsProcessor(V, "cpu", **{**wm.transformers_kwargs(), "bias": 1.0})
    rng = np.random.default_rng(width)
    for _ in range(30):
        seq = rng.integers(0, V, width)
        assert np.array_equal(wm.greenlist_ids(seq), np.sort(theirs._get_greenlist_ids(torch.tensor(seq)).numpy()))
    ids = rng.integers(0, V, 400)
    n = width + (scheme == "lefthash")
    flags = [
        int(ids[j + n - 1]) in theirs._get_greenlist_ids(torch.tensor(ids[j : j + n - (scheme == "lefthash")]))
        for j in range(len(ids) - n + 1)
    ]
    assert np.array_equal(wm.green_flags(ids), np.array(flags))


def test_counts_equal_transformers_detector_with_repeats_ignored() -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    wm = greenlist()
    config = transformers.GPT2Config(vocab_size=V, bos_token_id=V - 1)
    detector = transformers.WatermarkDetector(
        config, "cpu", transformers.WatermarkingConfig(**wm.transformers_kwargs()), ignore_repeated_ngrams=True
    )
    rng = np.random.default_rng(6)
    batch = np.concatenate([rng.integers(0, 50, (4, 300)), [biased_text(wm, 300, 0.7)]])  # repeats; watermark
    assert (batch[:, 0] != V - 1).all()  # transformers drops a leading BOS
    out = detector(torch.tensor(batch), return_dict=True)
    for row, ids in enumerate(batch):
        assert wm.score(ids) == (out.num_tokens_scored[row], out.num_green_tokens[row])


def test_synthid_g_values_equal_transformers() -> None:
    torch = pytest.importorskip("torch")
    logits_process = pytest.importorskip("transformers.generation.logits_process")
    for size in (65_521, 2**16, 1000):
        s = synthid(sampling_table_size=size, sampling_table_seed=3)
        theirs = logits_process.SynthIDTextWatermarkLogitsProcessor(device="cpu", **s.transformers_kwargs())
        assert np.array_equal(theirs.sampling_table.numpy(), s.table)
        ids = np.random.default_rng(size).integers(0, V, (3, 120))
        expected = theirs.compute_g_values(torch.tensor(ids)).numpy()
        assert np.array_equal(np.stack([s.g_values(row) for row in ids]), expected)


def test_detection_needs_neither_torch_nor_transformers() -> None:
    code = (
        "import sys\n"
        "from distillguard.watermark.greenlist import GreenListWatermark\n"
        "from distillguard.watermark.synthid import SynthIDWatermark\n"
        "from distillguard.watermark.logits import derive_key, detect_any\n"
        "ids = list(range(300))\n"
        "wm = GreenListWatermark.from_secret(b's', 'x', 1000)\n"
        "assert wm.detect(ids).scored == 299 and wm.table.cached == 299\n"
        "assert SynthIDWatermark.from_secret(b's', 'x', 1000, depth=4).detect(ids).scored > 0\n"
        "loaded = {'torch', 'transformers', 'tokenizers'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
