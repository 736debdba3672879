"""The populations: who sends traffic, benign and attack, with their default weights.

Weights are shares within each side (benign, attack); ``SimulationConfig.attack_share`` splits the sides.
Each module's docstring documents its populations' behaviour in detail.

Benign: casual_chat, developer, researcher, business_app, eval_run.
Attack: solo_harvester, cot_harvester, logprob_harvester, slow_and_low, model_pivot (single-account harvesting,
:mod:`.harvest`); self_instruct, evol_paraphraser, rubric_grader (synthetic-data generation, :mod:`.synthetic`);
reseller_mixed (:mod:`.reseller`); hydra_campaign (:mod:`.hydra`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from distillguard.simulate.populations import business, chat, developer, evaluation, harvest, hydra, reseller, synthetic
from distillguard.simulate.populations.base import Actor, PopulationSpec, one_per_account

_SPECS = (
    PopulationSpec("casual_chat", "benign", 0.55, "multi-turn conversations, evening rhythm, many languages",
                   one_per_account("casual_chat", chat.CasualChat)),
    PopulationSpec("developer", "benign", 0.20, "code questions in working-hours bursts, tools, repeats, scripts",
                   one_per_account("developer", developer.Developer)),
    PopulationSpec("researcher", "benign", 0.08, "diverse topics, long prompts, reasoning requests, batch experiments",
                   one_per_account("researcher", chat.Researcher)),
    PopulationSpec("business_app", "benign", 0.04, "high-volume 24/7 templated app, one system prompt, logprob labels",
                   one_per_account("business_app", business.BusinessApp)),
    PopulationSpec("eval_run", "benign", 0.05, "public benchmark test sets at high concurrency, temperature 0",
                   one_per_account("eval_run", evaluation.EvalTeam)),
    PopulationSpec("hydra_campaign", "attack", 0.50, "campaigns of small synchronised accounts sweeping one source",
                   hydra.build),
    PopulationSpec("solo_harvester", "attack", 0.07, "one loud account, broad single-turn, hammers through 429s",
                   one_per_account("solo_harvester", harvest.SoloHarvester)),
    PopulationSpec("cot_harvester", "attack", 0.07, "chain-of-thought elicitation wrappers, several languages",
                   one_per_account("cot_harvester", harvest.CotHarvester)),
    PopulationSpec("logprob_harvester", "attack", 0.06, "top_logprobs with max_tokens 1-5 over broad content",
                   one_per_account("logprob_harvester", harvest.LogprobHarvester)),
    PopulationSpec("slow_and_low", "attack", 0.07, "paced just under the daily cap, flat 24/7",
                   one_per_account("slow_and_low", harvest.SlowAndLow)),
    PopulationSpec("model_pivot", "attack", 0.05, "moves to the new model within hours of release",
                   one_per_account("model_pivot", harvest.ModelPivot)),
    PopulationSpec("self_instruct", "attack", 0.06, "self-instruct meta-prompts and instruction/response JSON",
                   one_per_account("self_instruct", synthetic.SelfInstruct)),
    PopulationSpec("evol_paraphraser", "attack", 0.05, "evol-instruct rewriting and paraphrase sweeps",
                   one_per_account("evol_paraphraser", synthetic.EvolParaphraser)),
    PopulationSpec("rubric_grader", "attack", 0.05, "the API as reward model: rubric scores, pairwise A/B",
                   one_per_account("rubric_grader", synthetic.RubricGrader)),
    PopulationSpec("reseller_mixed", "attack", 0.04, "reseller mixing real customers with 30-60% harvesting",
                   one_per_account("reseller_mixed", reseller.ResellerMixed)),
)  # fmt: skip

POPULATIONS: Mapping[str, PopulationSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})

__all__ = ["POPULATIONS", "Actor", "PopulationSpec"]
