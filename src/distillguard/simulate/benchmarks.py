"""Public benchmarks, procedurally: fixed test sets that every evaluation run replays.

A real benchmark's test set is public and identical for everyone, so many unrelated benign accounts send the very
same prompts, at high concurrency and temperature 0. That is exactly what a naive "same template from many
accounts" rule would flag, which is why the simulator reproduces it. The items here depend only on the benchmark
name, split and index (never on the run seed): every run, every account and every seed sees the same test set.
With a corpus directory the real test sets replace these (see :mod:`distillguard.simulate.library`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from distillguard.simulate import content
from distillguard.simulate.rng import derive_rng


@dataclass(frozen=True, slots=True)
class Benchmark:
    """``kind`` drives how an eval harness wraps the item: math (CoT or few-shot), code, choice, instruction."""

    name: str
    kind: str
    items: tuple[str, ...]


_FUNCTIONS = (
    ("sum_even", "numbers: list[int]", "int", "Return the sum of the even numbers in the list.", "[1, 2, 3, 4]", "6"),
    ("reverse_words", "text: str", "str", "Reverse the order of words in the text.", "'a b c'", "'c b a'"),
    ("is_palindrome", "text: str", "bool", "Check whether the text reads the same backwards.", "'level'", "True"),
    ("count_vowels", "text: str", "int", "Count the vowels in the text.", "'hello'", "2"),
    ("running_max", "numbers: list[int]", "list[int]", "Return the running maximum.", "[1, 3, 2]", "[1, 3, 3]"),
    ("flatten", "nested: list[list[int]]", "list[int]", "Flatten a list of lists.", "[[1], [2, 3]]", "[1, 2, 3]"),
    ("gcd", "a: int, b: int", "int", "Return the greatest common divisor of a and b.", "12, 18", "6"),
    ("is_prime", "n: int", "bool", "Return True if n is a prime number.", "7", "True"),
    ("rotate", "items: list[int], k: int", "list[int]", "Rotate right by k places.", "[1, 2, 3], 1", "[3, 1, 2]"),
    ("char_frequency", "text: str", "dict[str, int]", "Count each character.", "'aab'", "{'a': 2, 'b': 1}"),
    ("median", "numbers: list[float]", "float", "Return the median of the list.", "[3, 1, 2]", "2"),
    ("to_snake_case", "name: str", "str", "CamelCase to snake_case.", "'HelloWorld'", "'hello_world'"),
    ("pairs_sum_zero", "numbers: list[int]", "bool", "Do two elements sum to zero?", "[1, -1, 5]", "True"),
    ("digits_product", "n: int", "int", "Return the product of the odd digits of n (0 if none).", "235", "15"),
    ("balanced_brackets", "text: str", "bool", "Check that every bracket is closed in order.", "'([])'", "True"),
    ("fib", "n: int", "int", "Return the n-th Fibonacci number.", "10", "55"),
)  # fmt: skip
_VARIANTS = (
    "Ignore negative values.",
    "Handle an empty input.",
    "Be case-insensitive.",
    "Raise ValueError on bad input.",
)
_MBPP_TASKS = (
    ("find the shared elements of two lists", "similar_elements((3, 4, 5, 6), (5, 7, 4, 10))", "{{4, 5}}"),
    ("check whether a number is not prime", "is_not_prime(10)", "True"),
    ("find the n largest integers in a list", "heap_largest([25, 35, 22, 85], 2)", "[85, 35]"),
    ("count the number of set bits of a number", "count_set_bits({n})", "{bits}"),
    ("remove the first and last occurrence of a character", "remove_occ('hello', 'l')", "'heo'"),
    ("compute the volume of a triangular prism", "find_volume({n}, 2, 3)", "{vol}"),
    ("check whether a string contains only digits", "is_digits('{n}')", "True"),
    ("find the maximum run of uppercase characters", "max_run_uppercase('GeMKSForGERksISBESt')", "5"),
    ("sum the elements at odd indices", "sum_odd_index([{n}, 2, 3, 4])", "6"),
    ("convert a tuple of digits to an integer", "tuple_to_int((1, {d}, 3))", "1{d}3"),
)  # fmt: skip


def _gsm_item(index: int, split: str) -> str:
    return content.math_word_problem(derive_rng("benchmark", "gsm", split, index))


def _humaneval_item(index: int, split: str) -> str:
    rng = derive_rng("benchmark", "humaneval", split, index)
    name, args, ret, doc, example, result = _FUNCTIONS[index % len(_FUNCTIONS)]
    variant = index // len(_FUNCTIONS)
    if variant:
        name = f"{name}_{variant}"
        doc = f"{doc} {rng.choice(_VARIANTS)}"
    imports = "from typing import List\n\n\n" if "list" in args else ""
    return f'{imports}def {name}({args}) -> {ret}:\n    """ {doc}\n    >>> {name}({example})\n    {result}\n    """\n'


def _mbpp_item(index: int, split: str) -> str:
    rng = derive_rng("benchmark", "mbpp", split, index)
    task, call, out = _MBPP_TASKS[index % len(_MBPP_TASKS)]
    n = rng.randrange(2, 99)
    call = call.format(n=n, d=n % 10)
    out = out.format(bits=bin(n).count("1"), vol=n * 3, d=n % 10)
    return (
        f"Write a {rng.choice(('function', 'python function'))} to {task}. Your code should satisfy the following "
        f"assertion:\n```python\nassert {call} == {out}\n```"
    )


def _choice_item(index: int, split: str) -> str:
    rng = derive_rng("benchmark", "mmlu", split, index)
    domain = rng.choice(content.DOMAIN_NAMES)
    right = content.concept(rng, domain)
    options = [right, *rng.sample([c for c in content.ALL_CONCEPTS if c != right], 3)]
    rng.shuffle(options)
    stem = rng.choice(
        (
            "Which of the following is most closely associated with {d}?",
            "Which concept would a textbook of {d} discuss first?",
            "Which of the following belongs to the field of {d}?",
        )
    ).format(d=domain)
    lines = "\n".join(f"{letter}. {opt}" for letter, opt in zip("ABCD", options, strict=True))
    return f"The following is a multiple choice question about {domain}.\n\n{stem}\n{lines}\nAnswer:"


def _instruction_item(index: int, split: str) -> str:
    rng = derive_rng("benchmark", "wizard", split, index)
    return content.novel_question(rng) if index % 2 else content.broad_question(rng)


_MAKERS = {
    "gsm8k": ("math", _gsm_item, 1319, 7473),
    "humaneval": ("code", _humaneval_item, 164, 0),
    "mbpp": ("code", _mbpp_item, 399, 374),
    "mmlu": ("choice", _choice_item, 1400, 0),
    "wizardlm": ("instruction", _instruction_item, 218, 0),
}
NAMES = tuple(_MAKERS)


@cache
def procedural(name: str, split: str = "test") -> Benchmark:
    """The procedural stand-in for a public benchmark (``split`` "train" exists for gsm8k and mbpp)."""
    kind, maker, n_test, n_train = _MAKERS[name]
    n = n_test if split == "test" else n_train
    return Benchmark(name, kind, tuple(maker(i, split) for i in range(n)))
