"""What the response policy's decision does to one call: refuse it, slow it, limit it tighter, or degrade it.

Every call with a decision other than ``allow`` carries it in the event log (``extra.response``), including the
ones where nothing was applied (shadow mode, allowlisted accounts): that is the record of what would have happened.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from distillguard.config import RespondConfig
from distillguard.events.schema import Event
from distillguard.gateway.errors import GatewayError
from distillguard.gateway.validation import CHAT, CompletionRequest, parse_completion_request
from distillguard.limits import RuleSet
from distillguard.limits.rules import throttled
from distillguard.respond.degrade import DegradeRefused, ResponseDegrader, degrade_request
from distillguard.respond.policy import Decision
from distillguard.respond.responder import FAIL_CLOSED

if TYPE_CHECKING:
    from distillguard.gateway.auth import Principal

_THROTTLE_CACHE_MAX = 100_000


def _case_text(decision: Decision) -> str:
    if decision.case_id is None:
        return "Contact support to appeal."
    return (
        f"Case reference: {decision.case_id}. To appeal, POST /v1/appeals with this case_id and a message, "
        "or quote it to support."
    )


class Enforcement:
    def __init__(self, config: RespondConfig, max_tokens_cap: int) -> None:
        self.config = config
        self._max_tokens_cap = max_tokens_cap
        self._throttled: dict[tuple[str, RuleSet], RuleSet] = {}

    def rules(self, principal: Principal) -> RuleSet:
        key = (principal.account.account_id, principal.rules)
        rules = self._throttled.get(key)
        if rules is None:
            if len(self._throttled) >= _THROTTLE_CACHE_MAX:
                self._throttled.clear()
            rules = self._throttled[key] = throttled(
                principal.rules, principal.account.account_id, self.config.throttle
            )
        return rules

    async def apply(
        self, event: Event, req: CompletionRequest, principal: Principal, decision: Decision
    ) -> tuple[CompletionRequest, RuleSet, ResponseDegrader | None]:
        """The request to forward, the limits to charge and the response transform; or a GatewayError."""
        record = decision.to_json()
        event.extra["response"] = record
        if decision is FAIL_CLOSED:
            raise GatewayError(
                503,
                "Abuse screening is temporarily unavailable and this gateway fails closed; retry shortly.",
                "enforcement_unavailable",
                headers={"retry-after": "5"},
            )
        if not decision.applied:
            return req, principal.rules, None
        if decision.has("block"):
            raise GatewayError(
                403,
                "This account has been blocked: its use of the API matches model extraction, which the usage "
                f"policies forbid. {_case_text(decision)}",
                "account_blocked",
            )
        if decision.has("challenge"):
            raise GatewayError(
                403,
                "This account must verify its organization before it can continue: unusual use of the API was "
                f"detected. Verify at {self.config.verify_url}; calls resume once it is done. {_case_text(decision)}",
                "organization_verification_required",
            )
        rules = self.rules(principal) if decision.has("throttle") else principal.rules
        degrader = None
        if decision.has("degrade"):
            try:
                body, changes = degrade_request(req.body, event.endpoint, self.config.degrade)
            except DegradeRefused as refused:
                raise GatewayError(400, refused.message, "logprobs_unavailable", refused.param) from None
            if changes:
                req = parse_completion_request(body, event.endpoint, self._max_tokens_cap)
                req.rewritten = True
            record["degraded"] = changes
            degrader = ResponseDegrader(self.config.degrade, chat=event.endpoint == CHAT)
        if decision.has("tarpit") and self.config.tarpit_ms:
            record["tarpit_ms"] = self.config.tarpit_ms
            await asyncio.sleep(self.config.tarpit_ms / 1000)
        return req, rules, degrader
