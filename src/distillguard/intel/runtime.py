"""Partner intel inside a running deployment: the feed from the store, matching on every call, periodic pulls.

The gateway's detection hands each account (once) and each call to :meth:`IntelRuntime.on_account` /
:meth:`on_call`; matches go to :class:`~distillguard.intel.trust.PartnerEvidence`, which the scorer consults on
every rescoring. When a pull brings new intel, the feed is rebuilt off the event loop, the accounts already seen
are matched again, and those with new matches are rescored at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine

from distillguard.background import Background
from distillguard.config import IntelConfig
from distillguard.detect.verdicts import Thresholds
from distillguard.events.schema import Event
from distillguard.intel.feed import Feed, build_feed
from distillguard.intel.matching import Match, Matcher
from distillguard.intel.member import Member, load_member
from distillguard.intel.reviews import CURSOR as REVIEWS_CURSOR
from distillguard.intel.reviews import feedback_objects, review_feedback
from distillguard.intel.signing import parse_public_key
from distillguard.intel.store import IngestResult, IntelStore
from distillguard.intel.taxii import HubClient
from distillguard.intel.templates import prompt_text
from distillguard.intel.trust import PartnerEvidence, Trust, extraction_shaped
from distillguard.store.models import Account
from distillguard.timefmt import rfc3339, utcnow

if TYPE_CHECKING:
    from distillguard.respond.book import CaseBook

log = logging.getLogger(__name__)


def trusted_keys(config: IntelConfig, member: Member) -> dict[str, Ed25519PublicKey]:
    """Identity id -> public key of every partner, and our own (so our own objects read back from a hub verify)."""
    keys = {p.identity: parse_public_key(p.public_key) for p in config.partners}
    keys[member.identity_id] = member.signer.public_key
    return keys


def pull_once(config: IntelConfig, store: IntelStore, keys: dict[str, Ed25519PublicKey]) -> IngestResult:
    """Read what the hub added since the last pull, verify and store it, then move the cursor."""
    client = HubClient(config.hub)
    objects, newest = client.pull(store.cursor(client.source))
    result = store.ingest(objects, keys)
    if newest is not None:
        store.set_cursor(client.source, newest)
    if result.rejected:
        log.warning(
            "intel objects rejected",
            extra={"rejected": len(result.rejected), "first": result.rejected[0][1], "source": client.source},
        )
    return result


class IntelRuntime:
    def __init__(self, config: IntelConfig, data_dir: Path, engine: Engine, thresholds: Thresholds) -> None:
        self.config = config
        self.member = load_member(config, data_dir)
        self.key = self.member.group_key()
        self.store = IntelStore(engine)
        self.keys = trusted_keys(config, self.member)
        self.evidence = PartnerEvidence(Trust.from_config(config, self.member.identity_id), Feed(), thresholds)
        self.matcher = Matcher(Feed(), self.key)
        self._accounts: dict[str, Account] = {}
        # Called with the accounts to rescore after a reload (the detection's scorer.touch).
        self.on_changed: Callable[[list[str]], None] | None = None
        # The deployment's cases, when it has them: reviewers' decisions become reports to partners (intel/reviews.py).
        self.book: CaseBook | None = None
        self._task = Background("distillguard-intel-pull", self._pull_loop)
        self._install(*self._load())

    # feed -------------------------------------------------------------------------------------------
    def _load(self) -> tuple[Feed, Matcher, dict[str, list[Match]]]:
        """Build a new feed and matcher and match the known accounts again (off the event loop)."""
        feed = build_feed(self.store.objects(), self.key.key_id, rfc3339(utcnow()))
        matcher = Matcher(feed, self.key)
        rematched = {a: matcher.account(acc) for a, acc in self._accounts.copy().items()}
        for indicator_id, reason in feed.skipped:
            log.info("partner indicator not usable", extra={"indicator": indicator_id, "reason": reason})
        return feed, matcher, rematched

    def _install(self, feed: Feed, matcher: Matcher, rematched: dict[str, list[Match]]) -> list[str]:
        self.matcher = matcher
        self.evidence.feed = feed
        changed = [a for a, matches in rematched.items() if self.evidence.record(a, matches)]
        log.info("partner intel loaded", extra={"indicators": len(feed.indicators), "accounts_matched": len(changed)})
        return changed

    def reload(self) -> list[str]:
        """Rebuild the feed from the store now; the accounts whose evidence changed."""
        return self._install(*self._load())

    # matching ---------------------------------------------------------------------------------------
    def on_account(self, account: Account) -> bool:
        self._accounts[account.account_id] = account
        return self.evidence.record(account.account_id, self.matcher.account(account))

    def on_call(self, event: Event) -> bool:
        signals = event.signals
        if self.matcher.empty or signals is None:
            return False

        def prompt() -> str:
            try:
                body = orjson.loads(event.request_raw)
            except orjson.JSONDecodeError:
                return ""
            return prompt_text(body, event.endpoint) if isinstance(body, dict) else ""

        matches = self.matcher.call(
            signals.template_id, prompt, event.client_ip, (event.client_fingerprint, event.client_tls)
        )
        return bool(matches) and self.evidence.record(event.account_id, matches, extraction_shaped(signals))

    # reviewers' decisions -------------------------------------------------------------------------
    def report_reviews(self) -> int:
        """Tell partners what reviewers decided since the last time (intel/reviews.py): disputes for reversals,
        sightings for confirmations; stored here and pushed to the hub if there is one (blocking). The number of
        reports; the cursor moves only once they are stored and pushed, so a failure is retried next round."""
        if self.book is None or not self.config.review_feedback:
            return 0
        since = int(self.store.cursor(REVIEWS_CURSOR) or 0)
        feedback, last = review_feedback(self.book, self.evidence, self.evidence.feed, self.member.identity_id, since)
        if feedback:
            objects = feedback_objects(self.member, feedback, self.config.tlp)
            self.store.ingest(objects, self.keys)
            if self.config.hub.url:
                pushed = HubClient(self.config.hub).push(objects)
                if pushed.failures:
                    raise RuntimeError(f"the hub refused {len(pushed.failures)} review reports: {pushed.failures}")
            log.info(
                "review decisions reported to partners",
                extra={
                    "disputed": sorted({f.indicator_id for f in feedback if f.kind == "dispute"}),
                    "sighted": sorted({f.indicator_id for f in feedback if f.kind == "sighting"}),
                    "cases": sorted({f.case_id for f in feedback}),
                    "pushed": bool(self.config.hub.url),
                },
            )
        if last != since:
            self.store.set_cursor(REVIEWS_CURSOR, str(last))
        return len(feedback)

    # periodic pull and feedback ---------------------------------------------------------------------
    def start(self) -> None:
        pulls = bool(self.config.hub.url)
        reviews = self.config.review_feedback and self.book is not None
        if self.config.pull_interval_s > 0 and (pulls or reviews):
            self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _pull_loop(self) -> None:
        while True:
            changed = False
            if self.config.hub.url:
                try:
                    result = await asyncio.to_thread(pull_once, self.config, self.store, self.keys)
                    changed = result.accepted > 0
                except Exception as exc:  # the hub being away must not stop the gateway; try again next interval
                    log.warning("intel pull failed", extra={"error": str(exc)})
            try:
                changed = await asyncio.to_thread(self.report_reviews) > 0 or changed
            except Exception as exc:  # kept for the next round: the cursor did not move
                log.warning("reporting review decisions to partners failed", extra={"error": str(exc)})
            if changed:
                try:
                    rematched = self._install(*(await asyncio.to_thread(self._load)))
                except Exception as exc:
                    log.warning("reloading partner intel failed", extra={"error": str(exc)})
                else:
                    if self.on_changed is not None:
                        self.on_changed(rematched)
            await asyncio.sleep(self.config.pull_interval_s)
