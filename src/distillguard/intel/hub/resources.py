"""The TAXII 2.1 resources the hub serves, as JSON: discovery, API root, collection, envelope, manifest, versions,
status (TAXII 2.1, sections 4 and 5).

Optional lists are left out when empty, as the specification asks. Objects go out as the JSON they were stored as,
spliced into the envelope without being parsed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from distillguard.intel.hub.admission import Refusal
from distillguard.intel.hub.config import HubConfig
from distillguard.intel.hub.media import STIX_21, TAXII_21
from distillguard.intel.hub.query import encode_cursor
from distillguard.intel.hub.stamps import format_stamp
from distillguard.intel.hub.store import Access, Added, ApiRoot, Page

DATE_ADDED_FIRST = "X-TAXII-Date-Added-First"
DATE_ADDED_LAST = "X-TAXII-Date-Added-Last"


def _optional(resource: dict[str, Any], **fields: Any) -> dict[str, Any]:
    resource.update({k: v for k, v in fields.items() if v})
    return resource


def discovery(config: HubConfig, root_urls: Sequence[str], default: str | None) -> dict[str, Any]:
    return _optional(
        {"title": config.title},
        description=config.description,
        contact=config.contact,
        default=default,
        api_roots=list(root_urls),
    )


def api_root(root: ApiRoot, config: HubConfig) -> dict[str, Any]:
    return _optional(
        {"title": root.title, "versions": [TAXII_21], "max_content_length": config.max_content_length},
        description=root.description,
    )


def collection(access: Access) -> dict[str, Any]:
    c = access.collection
    return _optional(
        {
            "id": c.id,
            "title": c.title,
            "alias": c.alias,
            "can_read": access.can_read,
            "can_write": access.can_write,
            "media_types": [STIX_21],
        },
        description=c.description,
    )


def collections(accesses: Sequence[Access]) -> dict[str, Any]:
    return _optional({}, collections=[collection(a) for a in accesses])


def _paged(page: Page, key: str, items: list[Any]) -> bytes:
    resource: dict[str, Any] = {"more": page.more}
    if page.more:
        resource["next"] = encode_cursor(page.records[-1].date_added_us)
    if items:
        resource[key] = items
    return orjson.dumps(resource)


def envelope(page: Page) -> bytes:
    return _paged(page, "objects", [orjson.Fragment(r.body) for r in page.records])


def manifest(page: Page) -> bytes:
    records = [
        {
            "id": r.object_id,
            "date_added": format_stamp(r.date_added_us),
            "version": r.version,
            "media_type": f"application/stix+json;version={r.spec_version}",
        }
        for r in page.records
    ]
    return _paged(page, "objects", records)


def versions(page: Page) -> bytes:
    return _paged(page, "versions", [r.version for r in page.records])


def page_headers(page: Page) -> dict[str, str]:
    """X-TAXII-Date-Added-First/-Last: the date_added of the first and last object on the page."""
    if not page.records:
        return {}
    return {
        DATE_ADDED_FIRST: format_stamp(page.records[0].date_added_us),
        DATE_ADDED_LAST: format_stamp(page.records[-1].date_added_us),
    }


def status(status_id: str, requested_us: int, added: Sequence[Added], refused: Sequence[Refusal]) -> dict[str, Any]:
    successes = [
        _optional({"id": a.object_id, "version": a.version}, message=None if a.new else "already in the collection")
        for a in added
        if a.refused is None
    ]
    failures = [{"id": r.object_id, "version": r.version, "message": r.message} for r in refused] + [
        {"id": a.object_id, "version": a.version, "message": a.refused} for a in added if a.refused is not None
    ]
    return _optional(
        {
            "id": status_id,
            "status": "complete",
            "request_timestamp": format_stamp(requested_us),
            "total_count": len(added) + len(refused),
            "success_count": len(successes),
            "failure_count": len(failures),
            "pending_count": 0,
        },
        successes=successes,
        failures=failures,
    )
