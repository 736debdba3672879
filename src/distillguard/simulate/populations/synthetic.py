"""Synthetic-data generation against the API: the teacher-model half of a distillation pipeline.

self_instruct
    Alpaca/self-instruct meta-prompts ("come up with a set of 20 diverse task instructions ..." with three seed
    tasks, ``stop`` at task 20, temperature 1) alternating with instruction→response generation that asks for
    JSON. Some on ``/v1/completions``, as the original pipeline used.
evol_paraphraser
    Evol-instruct: "rewrite this prompt into a more complex version" with one of the evolution methods, and
    paraphrase sweeps of seed instructions. Short outputs, many calls.
rubric_grader
    The API as a reward model: rubric scores (1-10 with a justification) and pairwise A/B preferences with
    ``max_tokens`` 1 and log-probabilities, at temperature 0 over broad questions and candidate answers (LLM-as-
    judge evaluation is also a legitimate use; the scale and breadth are what differ).
"""

from __future__ import annotations

from distillguard.simulate.populations.harvest import SteadyHarvester


class SelfInstruct(SteadyHarvester):
    population = "self_instruct"
    recipe_kind = "self_instruct"
    median_per_day = 700.0


class EvolParaphraser(SteadyHarvester):
    population = "evol_paraphraser"
    recipe_kind = "evol"
    median_per_day = 1200.0


class RubricGrader(SteadyHarvester):
    population = "rubric_grader"
    recipe_kind = "rubric"
    median_per_day = 1500.0
    max_rhythm = 0.6
