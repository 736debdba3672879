"""Logits watermarks for self-hosted models: one interface over transformers' two schemes, with our own detectors.

A self-hosted model can mark what it generates at sampling time. Hugging Face transformers ships two such
watermarks; this module puts them behind one interface, ``LogitsWatermark``, with two implementations:

- ``distillguard.watermark.greenlist.GreenListWatermark``: the green-list watermark of Kirchenbauer et al. (2023),
  transformers' ``WatermarkingConfig``;
- ``distillguard.watermark.synthid.SynthIDWatermark``: SynthID-Text tournament sampling (Dathathri et al. 2024),
  transformers' ``SynthIDTextWatermarkingConfig``.

Each one turns on generation (``watermarking_config()``/``generation_config()`` for ``model.generate``,
``processor()`` for a ``LogitsProcessorList``, ``request_processor()`` for a serving engine's per-request hook) and
detects it in token ids with ``detect()``. The detectors are ours, in numpy, need no model and no torch (only the
vocabulary size, the configuration and the token ids) and report a ``Detection`` with an exact binomial p-value over
distinct scoring units: a unit that repeats in a text counts once, because a repeat is not new evidence. See
docs/watermark.md ("Logits watermark") for the maths, what it assumes, and measured figures.

Keys come from the deployment secret (``derive_key``); a ``Detection`` names the key that matched by a public id
(``key_id``) that does not reveal it. ``detect_any`` tries several held keys and corrects the p-value for how many it
tried (Bonferroni).

torch and transformers are an optional extra (``pip install distillguard[hf]``): nothing here imports them until a
method that hands an object to transformers is called, so detection runs in a process without them.

Generation on an accelerator: transformers' own processors draw the green lists (and SynthID's sampling table) from
a torch generator *on the model's device*, and CUDA's generator gives other numbers than the CPU's, so a watermark
made by vanilla transformers on a GPU is not the one its own CPU detector (or ours) checks. The configurations and
processors returned here run the watermark on the CPU whatever the model's device, so the same key gives the same
watermark everywhere.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from distillguard.watermark.result import Detection

# Keys are below 2**63: transformers multiplies them with int64 tensors (selfhash seeding, SynthID hashing), where a
# larger Python integer raises an overflow error.
KEY_LIMIT = 1 << 63
_KEY_LABEL = b"distillguard/logits-watermark/v1\x00"

# What a per-request logits processor looks like to a serving engine (vLLM's per-request form): the prompt's token
# ids, the ids generated so far and the next-token logits of that one request (1-D tensor) -> the processed logits.
RequestProcessor = Callable[[Sequence[int], Sequence[int], Any], Any]
TokenIds = Sequence[int] | NDArray[np.integer[Any]]


def derive_key(secret: bytes, scope: str) -> int:
    """The integer watermark key for ``scope`` (say "greenlist/model-a") from the deployment secret.

    HMAC-SHA256(secret, label || scope), first 63 bits, never 0: a different scope gives an unrelated key, and the
    key reveals nothing about the secret. transformers takes it as ``hashing_key`` (green list) or as one of the
    ``keys`` (SynthID, one scope per depth)."""
    if not secret:
        raise ValueError("the watermark secret must not be empty")
    digest = hmac.new(secret, _KEY_LABEL + scope.encode(), hashlib.sha256).digest()
    return (int.from_bytes(digest[:8], "big") >> 1) or 1


def key_id(*material: int | str) -> str:
    """A short public id of key material: the first 12 hex digits of SHA-256 over it.

    A report can say which key matched without revealing the key (finding a 63-bit key from its hash means trying
    the keys one by one)."""
    text = "\x1f".join(str(part) for part in material)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def check_key(key: int, what: str) -> int:
    key = int(key)
    if not 0 <= key < KEY_LIMIT:
        raise ValueError(f"{what} must be in [0, 2**63), got {key}")
    return key


def binomial_p_value(hits: int, scored: int, rate: float) -> float:
    """P[Binomial(scored, rate) >= hits], exactly: the chance of at least ``hits`` agreeing units among ``scored``
    independent ones when each agrees with probability ``rate``. 1.0 when nothing was scored.

    Computed as the regularised incomplete beta function (scipy's ``bdtrc``, within ~1e-12 relative of exact rational
    arithmetic even at 1e-120, and 30x cheaper per call than ``scipy.stats.binom.sf``), not a normal
    approximation."""
    if scored <= 0 or hits <= 0:
        return 1.0
    from scipy.special import bdtrc  # scipy is a core dependency; imported here to keep this module's import light

    return float(min(1.0, max(0.0, bdtrc(hits - 1, scored, rate))))


def token_array(token_ids: TokenIds, vocab_size: int) -> NDArray[np.int64]:
    """``token_ids`` as a 1-D int64 array, checked to be ids of the vocabulary (a ValueError otherwise)."""
    ids = np.asarray(token_ids)
    if ids.size == 0:
        return np.zeros(0, dtype=np.int64)
    if ids.ndim != 1:
        raise ValueError(f"token ids must be one sequence (1-D), got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"token ids must be integers, got {ids.dtype}")
    ids = ids.astype(np.int64, copy=False)
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
        raise ValueError(f"token ids must be in [0, {vocab_size}), got ids from {low} to {high}")
    return ids


def distinct(values: NDArray[Any]) -> NDArray[Any]:
    """The distinct values of an integer array, sorted (a sort and a comparison: ~4x faster than ``np.unique`` on
    the arrays detection makes, with numpy 2.4)."""
    ordered = np.sort(values.ravel())
    if not len(ordered):
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


class LogitsWatermark(ABC):
    """A watermark applied to the logits of a self-hosted model, and its detector.

    Enable it in generation with one of:

    - ``model.generate(**inputs, watermarking_config=wm.watermarking_config(), do_sample=True)``;
    - ``model.generate(**inputs, generation_config=wm.generation_config(max_new_tokens=...))``;
    - ``model.generate(**inputs, logits_processor=LogitsProcessorList([wm.processor()]), do_sample=True)``: a custom
      processor runs *before* temperature and top-k/top-p, where ``watermarking_config`` runs after them;
    - ``wm.request_processor()`` in a serving engine's per-request hook (docs/watermark.md shows it for vLLM).

    Detect it with ``wm.detect(token_ids)``, or ``detect_any(held_watermarks, token_ids)`` for several keys. Pass the
    ids of the generated text only: prompt tokens are not watermarked, so they dilute the evidence.

    ``vocab_size`` is the model's (``model.config.vocab_size``, what transformers uses), which can be larger than
    the tokenizer's.
    """

    scheme: ClassVar[str]
    vocab_size: int
    alpha: float

    @property
    @abstractmethod
    def key_id(self) -> str:
        """Public id of this watermark's key (see ``key_id()``)."""

    @abstractmethod
    def transformers_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the matching vanilla transformers config (includes the secret key)."""

    @abstractmethod
    def watermarking_config(self) -> Any:
        """A transformers watermarking config (a subclass of the vanilla one) for ``model.generate``.

        It builds the same processor as the vanilla config, but run on the CPU whatever the model's device, so the
        watermark does not depend on where the model runs (on CPU the two are identical)."""

    @abstractmethod
    def request_processor(self) -> RequestProcessor:
        """A per-request logits processor: ``(prompt_ids, output_ids, logits) -> logits`` for one request's 1-D
        next-token logits, applying the watermark exactly as ``model.generate`` would. Make one per request."""

    @abstractmethod
    def detect(self, token_ids: TokenIds) -> Detection:
        """Test ``token_ids`` for this watermark. Too short a text scores nothing: p-value 1, not detected."""

    def generation_config(self, **kwargs: Any) -> Any:
        """A transformers ``GenerationConfig`` with the watermark and sampling on (``do_sample=True`` unless
        ``kwargs`` say otherwise; greedy decoding is deterministic and carries a weaker, distorted signal)."""
        from transformers import GenerationConfig

        kwargs.setdefault("do_sample", True)
        return GenerationConfig(watermarking_config=self.watermarking_config(), **kwargs)

    def processor(self) -> Any:
        """The transformers ``LogitsProcessor`` for a ``LogitsProcessorList`` (one per ``generate`` call: SynthID's
        keeps per-generation state). It runs on the CPU and hands its result back on the logits' device."""
        return self.watermarking_config().construct_processor(self.vocab_size, "cpu")

    def nothing_scored(self) -> Detection:
        return Detection(self.scheme, None, 0, 0, 0.0, 1.0, alpha=self.alpha)


def detect_any(watermarks: Sequence[LogitsWatermark], token_ids: TokenIds) -> Detection:
    """Test ``token_ids`` against every held watermark and report the best match.

    The p-value is Bonferroni-corrected for the keys tried (``p * len(watermarks)``, at most 1), so holding many
    keys does not raise the false-positive rate: P[any key's corrected p <= alpha | no watermark] <= alpha."""
    if not watermarks:
        raise ValueError("no watermark to test against")
    tried = len(watermarks)
    results = [wm.detect(token_ids) for wm in watermarks]
    scored = [r for r in results if r.scored > 0]
    if not scored:
        first = results[0]
        return Detection(first.scheme, None, 0, 0, 0.0, 1.0, alpha=first.alpha, keys_tried=tried)
    best = min(scored, key=lambda r: (r.p_value, -r.scored))
    return Detection(
        best.scheme,
        best.key_id,
        best.scored,
        best.hits,
        best.expected,
        min(1.0, best.p_value * tried),
        alpha=best.alpha,
        keys_tried=tried,
    )


@functools.cache
def cpu_processor_class() -> type[Any]:
    """transformers ``LogitsProcessor`` that runs a watermark processor on the CPU and returns its result on the
    device of the logits it was given (built on first use, so that transformers is imported only then)."""
    from transformers import LogitsProcessor

    class CpuWatermarkLogitsProcessor(LogitsProcessor):  # type: ignore[misc]
        """Runs ``inner`` (built on the CPU) whatever the device of the logits: the same key gives the same
        watermark on any device. On CPU logits it is ``inner`` itself."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            if scores.device.type == "cpu":
                return self.inner(input_ids.cpu(), scores)
            return self.inner(input_ids.cpu(), scores.cpu()).to(scores.device)

    return CpuWatermarkLogitsProcessor


def one_row(processor: Any, input_ids: Sequence[int], logits: Any) -> Any:
    """Apply a batch processor to one request: ``input_ids`` the tokens it needs, ``logits`` 1-D."""
    import torch

    ids = torch.tensor([list(input_ids)], dtype=torch.long)
    return processor(ids, logits.unsqueeze(0)).squeeze(0)
