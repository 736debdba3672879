# ruff: noqa: RUF001  (multilingual text is the point: full-width punctuation, Cyrillic, dotless i)
"""Procedural completions: text whose length, language and shape fit the request, with consistent usage.

Texts are slices of per-language pools of pseudo-sentences (built once, from a fixed seed) behind an opening that
fits the reply style (a step-by-step preamble for chain-of-thought, a code fence for code, a bare label for
classification). Slicing keeps a 2,000-token reply as cheap as a 20-token one, which matters at a million events.
Token counts follow the gateway's estimate (about four bytes of UTF-8 per token), so ``usage.completion_tokens``
agrees with ``len(text)``; a reply that would outgrow ``max_tokens`` is cut there with finish reason ``length``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

import orjson

from distillguard.simulate import content
from distillguard.simulate.rng import mix64

BYTES_PER_TOKEN = 4

_WORDS: dict[str, str] = {
    "en": "the model system data result answer approach because however which first then also important example "
    "process value change people time way question problem reason step case point idea structure method effect "
    "often usually clearly between within across without typically specific general common different useful "
    "consider ensure provide explain show compare note remember include avoid depends means suggests allows",
    "es": "el la los datos resultado respuesta porque sin embargo primero luego también importante ejemplo proceso "
    "valor cambio personas tiempo forma pregunta problema razón paso caso idea método efecto normalmente entre "
    "diferente útil considerar asegurar explicar mostrar comparar incluir evitar depende permite",
    "pt": "o a os dados resultado resposta porque porém primeiro depois também importante exemplo processo valor "
    "mudança pessoas tempo forma pergunta problema razão passo caso ideia método efeito geralmente entre "
    "diferente útil considerar garantir explicar mostrar comparar incluir evitar depende permite",
    "fr": "le la les données résultat réponse parce que cependant premièrement ensuite aussi important exemple "
    "processus valeur changement personnes temps façon question problème raison étape cas idée méthode effet "
    "souvent entre différent utile considérer assurer expliquer montrer comparer inclure éviter dépend permet",
    "de": "der die das Daten Ergebnis Antwort weil jedoch zuerst dann auch wichtig Beispiel Prozess Wert Änderung "
    "Menschen Zeit Weise Frage Problem Grund Schritt Fall Idee Methode Wirkung oft zwischen verschieden nützlich "
    "beachten sicherstellen erklären zeigen vergleichen einschließen vermeiden hängt ermöglicht",
    "it": "il la i dati risultato risposta perché tuttavia prima poi anche importante esempio processo valore "
    "cambiamento persone tempo modo domanda problema ragione passo caso idea metodo effetto spesso tra diverso "
    "utile considerare garantire spiegare mostrare confrontare includere evitare dipende permette",
    "ru": "модель система данные результат ответ потому что однако сначала затем также важно пример процесс "
    "значение изменение люди время способ вопрос проблема причина шаг случай идея метод эффект часто между "
    "разный полезный учитывать объяснить показать сравнить включить избегать зависит позволяет",
    "zh": "模型 系统 数据 结果 答案 因为 但是 首先 然后 也 重要 例如 过程 价值 变化 人们 时间 方法 问题 原因 步骤 "
    "情况 想法 结构 效果 通常 之间 不同 有用 考虑 确保 解释 说明 比较 包括 避免 取决于 允许 我们 可以 需要",
    "ja": "モデル システム データ 結果 答え なぜなら しかし まず 次に また 重要 例えば 過程 価値 変化 人々 時間 "
    "方法 問題 理由 手順 場合 考え 構造 効果 通常 間 異なる 役立つ 考える 確認 説明 示す 比較 含む 避ける です ます",
    "ko": "모델 시스템 데이터 결과 답변 왜냐하면 하지만 먼저 그다음 또한 중요한 예를 들어 과정 가치 변화 사람들 "
    "시간 방법 질문 문제 이유 단계 경우 생각 구조 효과 보통 사이 다른 유용한 고려 확인 설명 보여 비교 포함",
    "tr": "model sistem veri sonuç cevap çünkü ancak önce sonra ayrıca önemli örnek süreç değer değişim insanlar "
    "zaman yol soru sorun neden adım durum fikir yöntem etki genellikle arasında farklı yararlı açıklamak",
    "id": "model sistem data hasil jawaban karena namun pertama kemudian juga penting contoh proses nilai perubahan "
    "orang waktu cara pertanyaan masalah alasan langkah kasus ide metode efek biasanya antara berbeda berguna",
}
_NO_SPACES = {"zh", "ja"}
_OPENERS = {
    "chat": {
        "en": ("Sure! ", "Great question. ", "Here's a quick overview.\n\n", "", "Absolutely. ", "Good idea! "),
        "es": ("¡Claro! ", "Buena pregunta. ", ""),
        "pt": ("Claro! ", "Boa pergunta. ", ""),
        "fr": ("Bien sûr ! ", "Bonne question. ", ""),
        "de": ("Klar! ", "Gute Frage. ", ""),
        "it": ("Certo! ", "Bella domanda. ", ""),
        "ru": ("Конечно! ", "Хороший вопрос. ", ""),
        "zh": ("当然！", "好问题。", ""),
        "ja": ("もちろんです！", "いい質問ですね。", ""),
        "ko": ("물론이죠! ", "좋은 질문이에요. ", ""),
        "tr": ("Tabii! ", ""),
        "id": ("Tentu! ", ""),
    },
    "cot": {
        "en": ("Let me think step by step.\n\nStep 1: ", "<think>\nFirst, let me restate the problem. ",
               "Let's work through this carefully.\n\n1. "),
        "zh": ("让我们一步一步地思考。\n\n第一步：", "<think>\n首先，"),
        "ru": ("Давайте рассуждать шаг за шагом.\n\nШаг 1: ",),
        "es": ("Pensemos paso a paso.\n\nPaso 1: ",),
        "de": ("Denken wir Schritt für Schritt.\n\nSchritt 1: ",),
        "ja": ("段階的に考えてみましょう。\n\nステップ1：",),
    },
}  # fmt: skip
_CODE_LINES = (
    "def {a}({b}):", "    if not {b}:", "        return None", "    {c} = {{}}", "    for item in {b}:",
    "        {c}[item.key] = item", "    return sorted({c}.values())", "const {a} = async ({b}) => {{",
    "  const {c} = await fetch(url);", "  return {c}.json();", "}};", "func {a}({b} []int) int {{",
    "    total := 0", "    for _, v := range {b} {{", "        total += v", "    }}", "    return total",
    "SELECT id, name FROM {a} WHERE {b} > 10;", "with open(path) as {c}:", "    data = json.load({c})",
)  # fmt: skip


@cache
def _pool(lang: str) -> tuple[str, float, str]:
    """About 24k characters of pseudo-sentences in ``lang``, their UTF-8 bytes per character, the sentence end."""
    words = _WORDS.get(lang, _WORDS["en"]).split()
    rng = random.Random(f"pool-{lang}")
    parts: list[str] = []
    size = 0
    joiner = "" if lang in _NO_SPACES else " "
    stop = "。" if lang in _NO_SPACES else ". "
    while size < 24_000:
        sentence = joiner.join(rng.choice(words) for _ in range(rng.randrange(5, 16)))
        if lang not in _NO_SPACES:
            sentence = sentence[0].upper() + sentence[1:]
        if rng.random() < 0.08:
            sentence = "\n\n" + sentence
        elif rng.random() < 0.05:
            sentence = "\n- " + sentence
        parts.append(sentence + stop)
        size += len(parts[-1])
    text = "".join(parts)
    return text, len(text.encode()) / len(text), stop


@cache
def _code_pool() -> str:
    rng = random.Random("pool-code")
    lines = []
    for _ in range(1200):
        a, b, c = rng.sample(("items", "rows", "cache", "user", "config", "result", "payload", "nodes"), 3)
        lines.append(rng.choice(_CODE_LINES).format(a=a, b=b, c=c))
    return "\n".join(lines)


def _slice(pool: str, noise: int, chars: int, sentence: str = ". ") -> str:
    """``chars`` characters of ``pool`` from a noise-chosen offset, from a sentence (or line) start to a word end."""
    if chars <= 0:
        return ""
    chars = min(chars, len(pool) // 2)
    start = noise % (len(pool) - chars)
    boundary = pool.find(sentence, start, start + 400)
    if boundary < 0:
        boundary = pool.find(" ", start, start + 400)
    if 0 <= boundary < len(pool) - chars:
        start = boundary + len(sentence)
    end = start + chars
    cut = pool.rfind(" ", start, end)
    return pool[start : cut if cut > start + chars // 2 else end]


@dataclass(frozen=True, slots=True)
class Reply:
    text: str | None
    completion_tokens: int
    finish_reason: str


def _tokens(text: str) -> int:
    return max(1, len(text.encode()) // BYTES_PER_TOKEN)


def synthesize(
    style: str, lang: str, target_tokens: int, max_tokens: int | None, seed: int, labels: tuple[str, ...] = ()
) -> Reply:
    """The reply to one call. ``seed`` picks the slice (same seed, same text); ``labels`` serve label/score styles."""
    noise = mix64(seed)
    if style == "label":
        label = labels[noise % len(labels)] if labels else "yes"
        return _capped(label, max_tokens)
    if style == "tool":
        return Reply(None, 15 + noise % 60, "tool_calls")
    limit = target_tokens if max_tokens is None else min(target_tokens, max_tokens)
    truncated = max_tokens is not None and target_tokens > max_tokens
    pool, bpc, stop = _pool(lang)
    budget_chars = int(limit * BYTES_PER_TOKEN / bpc)
    if style == "code":
        code = _slice(_code_pool(), noise, budget_chars * 2 // 3, sentence="\n")
        text = f"Here's one way to do it:\n\n```\n{code}\n```\n\n" + _slice(pool, noise >> 20, budget_chars // 3, stop)
    elif style == "cot":
        openers = _OPENERS["cot"].get(lang, _OPENERS["cot"]["en"])
        body = _slice(pool, noise >> 8, budget_chars, stop)
        text = openers[noise % len(openers)] + body
        if not truncated:
            text += f"\n\nFinal answer: {(noise >> 40) % 997}"
    elif style == "json":
        fields = {"vendor": content.PEOPLE[noise % len(content.PEOPLE)], "invoice_number": str(noise % 99991)}
        fields["total"] = f"{(noise >> 16) % 9000}.{(noise >> 30) % 100:02d}"
        text = orjson.dumps(fields).decode()
    elif style == "tasks":
        text = _task_list(seed, limit)
    elif style == "score":
        if labels:
            return _capped(labels[noise % len(labels)], max_tokens)
        text = f"Score: {1 + noise % 10}\nJustification: " + _slice(pool, noise >> 12, max(budget_chars - 30, 10), stop)
    elif style == "rewrite":
        text = "#Rewritten Prompt#:\n" + _slice(pool, noise >> 6, budget_chars, stop)
    elif style == "token":
        words = _slice(pool, noise, max(1, budget_chars), stop).split()
        text = " ".join(words[: max(1, limit)]) or "the"
    else:
        openers = _OPENERS["chat"].get(lang, _OPENERS["chat"]["en"])
        text = openers[noise % len(openers)] + _slice(pool, noise >> 8, budget_chars, stop)
    if truncated and max_tokens is not None:
        return Reply(text, max_tokens, "length")
    return _capped(text, max_tokens)


def _capped(text: str, max_tokens: int | None) -> Reply:
    """A reply that stopped by itself, unless it does not fit ``max_tokens``: then cut there."""
    tokens = _tokens(text)
    if max_tokens is not None and tokens > max_tokens:
        return Reply(text.encode()[: max_tokens * BYTES_PER_TOKEN].decode(errors="ignore"), max_tokens, "length")
    return Reply(text, tokens, "stop")


def _task_list(seed: int, limit_tokens: int) -> str:
    """A self-instruct answer: numbered instruction/input/output blocks, as many as the token budget allows."""
    rng = random.Random(seed)
    blocks: list[str] = []
    size = 0
    i = 1
    while size < limit_tokens * BYTES_PER_TOKEN and i <= 20:
        ins, inp, out = content.seed_task(rng)
        block = f"{i}. Instruction: {ins}\n{i}. Input:\n{inp}\n{i}. Output:\n{out}\n###\n"
        blocks.append(block)
        size += len(block)
        i += 1
    return "".join(blocks)[: limit_tokens * BYTES_PER_TOKEN]
