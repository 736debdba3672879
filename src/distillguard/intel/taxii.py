"""Push to and pull from a TAXII 2.1 collection with the OASIS client (``taxii2-client``).

Pulls read every version of every object (``match[version]=all``) and are incremental: the cursor is the latest
``date_added`` the hub's manifest showed *before* the objects were read, so an object added meanwhile is read now
and again next time (storing is idempotent) rather than missed. Pushes go in envelopes of ``PUSH_BATCH`` objects
so that no request exceeds a hub's size limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import Collection, as_pages

from distillguard.config import HubClientConfig

PUSH_BATCH = 200
PAGE = 500


class HubError(RuntimeError):
    """The hub could not be reached, refused our credentials, or answered with an error."""


@dataclass
class PushResult:
    total: int = 0
    succeeded: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "succeeded": self.succeeded, "failures": self.failures}


class HubClient:
    def __init__(self, config: HubClientConfig) -> None:
        if not config.url or not config.collection:
            raise HubError("no hub configured: set [intel.hub] url (the TAXII API root) and collection")
        self.source = f"{config.url.rstrip('/')}/collections/{config.collection}/"
        self._config = config

    def _collection(self) -> Collection:
        try:
            collection = Collection(self.source, user=self._config.username, password=self._config.resolved_password())
            collection.refresh()
            return collection
        except (requests.RequestException, TAXIIServiceException) as exc:
            raise HubError(f"hub collection {self.source}: {_describe(exc)}") from None

    def push(self, objects: list[dict[str, Any]]) -> PushResult:
        collection = self._collection()
        result = PushResult()
        try:
            for start in range(0, len(objects), PUSH_BATCH):
                chunk = objects[start : start + PUSH_BATCH]
                status = collection.add_objects({"objects": chunk}, wait_for_completion=True, poll_interval=0.2)
                result.total += int(status.total_count)
                result.succeeded += int(status.success_count)
                result.failures += list(status.failures or [])
        except (requests.RequestException, TAXIIServiceException, ValueError) as exc:
            raise HubError(f"pushing to {self.source}: {_describe(exc)}") from None
        return result

    def pull(self, added_after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Objects added after the cursor, and the new cursor (None when nothing was added)."""
        collection = self._collection()
        # Every version, not only the newest: a member that posts a newer version of another's object must not hide
        # the genuine one from us (we verify each version and keep the ones that check).
        filters: dict[str, Any] = {"version": "all"}
        if added_after:
            filters["added_after"] = added_after
        try:
            newest = max((r["date_added"] for r in self._records(collection, filters)), default=None)
            if newest is None:
                return [], None
            objects = [o for page in as_pages(collection.get_objects, PAGE, **filters) for o in page.get("objects", [])]
        except (requests.RequestException, TAXIIServiceException, ValueError, KeyError) as exc:
            raise HubError(f"pulling from {self.source}: {_describe(exc)}") from None
        return objects, newest

    @staticmethod
    def _records(collection: Collection, filters: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for page in as_pages(collection.get_manifest, PAGE, **filters):
            yield from page.get("objects", [])


def _describe(exc: BaseException) -> str:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        try:
            body = exc.response.json()
            return f"HTTP {exc.response.status_code}: {body.get('title', '')} {body.get('description', '')}".strip()
        except ValueError:
            return f"HTTP {exc.response.status_code}"
    return str(exc) or type(exc).__name__
