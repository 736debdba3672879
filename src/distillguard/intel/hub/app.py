"""The hub's TAXII 2.1 routes (Starlette).

- ``/taxii2/`` is the discovery document; each API root lives at ``/taxii2/{api_root}/``.
- Every route needs a member's credentials. A member sees only the collections it has a right on: the others are
  missing from its listing and answer 404, as if they did not exist. Reading needs ``can_read``, adding needs
  ``can_write``, deleting needs both (403 otherwise: the member knows the collection).
- Every answer, errors included, is ``application/taxii+json;version=2.1``.

Database work runs off the event loop, one thread hop per request: authentication, access and the query together.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio.to_thread
import orjson
from anyio import CapacityLimiter
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from distillguard.intel.hub import query as q
from distillguard.intel.hub import resources
from distillguard.intel.hub.admission import Incoming, Refusal, admit
from distillguard.intel.hub.auth import authenticate
from distillguard.intel.hub.config import HubConfig
from distillguard.intel.hub.errors import (
    TaxiiError,
    bad_request,
    forbidden,
    not_acceptable,
    not_found,
    too_large,
    unsupported_media_type,
)
from distillguard.intel.hub.media import accepts_taxii, is_taxii_content, taxii_json, taxii_response
from distillguard.intel.hub.store import DEFAULT_ROOT, Access, HubStore
from distillguard.timefmt import epoch_us, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

DISCOVERY = "/taxii2/"
ROOT = "/taxii2/{api_root}/"
COLLECTION = ROOT + "collections/{collection_id}/"
OBJECT = COLLECTION + "objects/{object_id}/"
READ_THREADS = 1
WRITE_THREADS = 1


def _params(request: Request) -> dict[str, list[str]]:
    return {name: request.query_params.getlist(name) for name in request.query_params}


class HubAPI:
    def __init__(self, store: HubStore, config: HubConfig) -> None:
        self.store = store
        self.config = config
        # Few threads: the work is mostly Python holding the GIL, and more threads only take turns with the event
        # loop (pages of 100 at 8 connections: 310/s in Starlette's 40 threads, 560/s in 2, 880/s in 1). Writers
        # (validating an envelope can take seconds) have their own, so that reads do not queue behind them.
        self._readers = CapacityLimiter(READ_THREADS)
        self._writers = CapacityLimiter(WRITE_THREADS)

    # plumbing ---------------------------------------------------------------------------------------
    async def _as_member(self, request: Request, work: Callable[[str], T]) -> T:
        """Negotiate, then authenticate and run ``work(member)`` in one trip to the thread pool."""
        if not accepts_taxii(request.headers.get("accept")):
            raise not_acceptable()
        header = request.headers.get("authorization")
        return await anyio.to_thread.run_sync(lambda: work(authenticate(self.store, header)), limiter=self._readers)

    def _access(self, member: str, request: Request, read: bool = False, write: bool = False) -> Access:
        """The collection of the request's path as ``member`` sees it: 404 outside it, 403 without the right."""
        api_root, collection_id = request.path_params["api_root"], request.path_params["collection_id"]
        access = self.store.access(member, api_root, collection_id)
        if access is None:
            raise not_found(f"No collection {collection_id[:64]!r} in API root {api_root[:64]!r}.")
        if read and not access.can_read:
            raise forbidden("You may add objects to this collection but not read it.")
        if write and not access.can_write:
            raise forbidden("You may read this collection but not add to it or delete from it.")
        return access

    def _query(self, request: Request, allowed: frozenset[str], default_version: str = "last") -> q.Query:
        return q.parse_query(_params(request), allowed, self.config.max_page, default_version)

    def _root_urls(self, request: Request) -> dict[str, str]:
        base = (self.config.public_url or str(request.base_url)).rstrip("/")
        return {root.name: f"{base}/taxii2/{root.name}/" for root in self.store.api_roots()}

    async def _body(self, request: Request) -> bytes:
        limit = self.config.max_content_length
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise too_large(limit)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                chunks.append(chunk)
        except ClientDisconnect:
            raise bad_request("The request body ended early.") from None
        return b"".join(chunks)

    # discovery, API roots, collections --------------------------------------------------------------
    async def discovery(self, request: Request) -> Response:
        """GET /taxii2/"""

        def work(_member: str) -> Response:
            urls = self._root_urls(request)
            return taxii_json(resources.discovery(self.config, list(urls.values()), urls.get(DEFAULT_ROOT)))

        return await self._as_member(request, work)

    async def api_root(self, request: Request) -> Response:
        """GET /taxii2/{api_root}/"""

        def work(_member: str) -> Response:
            name = request.path_params["api_root"]
            root = self.store.api_root(name)
            if root is None:
                raise not_found(f"No API root {name[:64]!r}: the discovery document at {DISCOVERY} lists them.")
            return taxii_json(resources.api_root(root, self.config))

        return await self._as_member(request, work)

    async def collections(self, request: Request) -> Response:
        """GET /taxii2/{api_root}/collections/: the collections this member is in."""

        def work(member: str) -> Response:
            name = request.path_params["api_root"]
            if self.store.api_root(name) is None:
                raise not_found(f"No API root {name[:64]!r}.")
            return taxii_json(resources.collections(self.store.accessible(member, name)))

        return await self._as_member(request, work)

    async def collection(self, request: Request) -> Response:
        """GET /taxii2/{api_root}/collections/{id}/"""
        return await self._as_member(request, lambda m: taxii_json(resources.collection(self._access(m, request))))

    # objects ----------------------------------------------------------------------------------------
    async def get_objects(self, request: Request) -> Response:
        """GET .../objects/?added_after=&limit=&next=&match[id|type|version|spec_version]="""
        query = self._query(request, q.OBJECTS)

        def work(member: str) -> Response:
            page = self.store.objects(self._access(member, request, read=True).collection.id, query)
            return taxii_response(resources.envelope(page), headers=resources.page_headers(page))

        return await self._as_member(request, work)

    async def manifest(self, request: Request) -> Response:
        """GET .../manifest/ with the filters of get_objects."""
        query = self._query(request, q.OBJECTS)

        def work(member: str) -> Response:
            page = self.store.manifest(self._access(member, request, read=True).collection.id, query)
            return taxii_response(resources.manifest(page), headers=resources.page_headers(page))

        return await self._as_member(request, work)

    async def get_object(self, request: Request) -> Response:
        """GET .../objects/{object_id}/?added_after=&limit=&next=&match[version|spec_version]="""
        query = self._query(request, q.ONE_OBJECT)
        object_id = request.path_params["object_id"]

        def work(member: str) -> Response:
            collection_id = self._access(member, request, read=True).collection.id
            page = self.store.objects(collection_id, query, object_id)
            if not page.records and not self.store.has_object(collection_id, object_id):
                raise not_found(f"No object {object_id[:250]!r} in this collection.")
            return taxii_response(resources.envelope(page), headers=resources.page_headers(page))

        return await self._as_member(request, work)

    async def versions(self, request: Request) -> Response:
        """GET .../objects/{object_id}/versions/?added_after=&limit=&next=&match[spec_version]="""
        query = self._query(request, q.VERSIONS, default_version="all")
        object_id = request.path_params["object_id"]

        def work(member: str) -> Response:
            collection_id = self._access(member, request, read=True).collection.id
            page = self.store.versions(collection_id, object_id, query)
            if not page.records and not self.store.has_object(collection_id, object_id):
                raise not_found(f"No object {object_id[:250]!r} in this collection.")
            return taxii_response(resources.versions(page), headers=resources.page_headers(page))

        return await self._as_member(request, work)

    async def delete_object(self, request: Request) -> Response:
        """DELETE .../objects/{object_id}/?match[version|spec_version]= (all versions by default)."""
        query = self._query(request, q.DELETE, default_version="all")
        object_id = request.path_params["object_id"]

        def work(member: str) -> Response:
            collection_id = self._access(member, request, read=True, write=True).collection.id
            if self.store.delete_object(collection_id, object_id, query) == 0:
                raise not_found(f"No object {object_id[:250]!r} (of the versions asked for) in this collection.")
            log.info("object deleted", extra={"member": member, "collection": collection_id, "object": object_id})
            return taxii_response(b"")

        return await self._as_member(request, work)

    async def add_objects(self, request: Request) -> Response:
        """POST .../objects/ with an envelope: every object is checked, stored if valid and new; 202 + status."""
        api_root = request.path_params["api_root"]
        member, access = await self._as_member(request, lambda m: (m, self._access(m, request, write=True)))
        collection_id = access.collection.id
        if not is_taxii_content(request.headers.get("content-type")):
            raise unsupported_media_type(request.headers.get("content-type"))
        objects = _envelope_objects(await self._body(request))
        requested_us = epoch_us(utcnow())

        def work() -> Response:
            admitted = [admit(obj) for obj in objects]
            incoming = [a for a in admitted if isinstance(a, Incoming)]
            refused = [a for a in admitted if isinstance(a, Refusal)]
            added = self.store.add_objects(collection_id, member, incoming)
            status_id = str(uuid.uuid4())
            status = resources.status(status_id, requested_us, added, refused)
            body = orjson.dumps(status)
            self.store.save_status(status_id, api_root, member, body.decode())
            log.info(
                "objects posted",
                extra={
                    "member": member,
                    "collection": collection_id,
                    "status_id": status_id,
                    "new": sum(a.new for a in added),
                    "known": sum(not a.new and a.refused is None for a in added),
                    "refused": len(refused) + sum(a.refused is not None for a in added),
                },
            )
            return taxii_response(body, 202)

        return await anyio.to_thread.run_sync(work, limiter=self._writers)

    async def status(self, request: Request) -> Response:
        """GET /taxii2/{api_root}/status/{status_id}/: only the member that made the POST sees it."""

        def work(member: str) -> Response:
            status_id = request.path_params["status_id"]
            body = self.store.status(request.path_params["api_root"], status_id, member)
            if body is None:
                raise not_found(f"No status {status_id[:64]!r} of yours in this API root.")
            return taxii_response(body.encode())

        return await self._as_member(request, work)


def _envelope_objects(body: bytes) -> list[Any]:
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"The body is not JSON: {exc}.") from None
    if not isinstance(envelope, dict):
        raise bad_request('The body must be a TAXII envelope: {"objects": [...]}.')
    objects = envelope.get("objects", [])
    if not isinstance(objects, list):
        raise bad_request("The envelope's `objects` must be a list.")
    return objects


# errors -----------------------------------------------------------------------------------------------
async def _taxii_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TaxiiError)
    return exc.response()


async def _http_error(_request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, method not allowed) as TAXII errors."""
    assert isinstance(exc, HTTPException)
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Request refused")
    return TaxiiError(exc.status_code, title, exc.detail, exc.headers).response()


async def _server_error(_request: Request, _exc: Exception) -> Response:
    # The traceback goes to the hub's log (uvicorn logs the exception), never to the client.
    return TaxiiError(500, "Internal error", "The hub could not complete the request; its log says why.").response()


async def _health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _route(path: str, **handlers: Callable[[Request], Awaitable[Response]]) -> Route:
    """One route for several methods of a path, so that a 405 lists all of them in its Allow header."""

    async def endpoint(request: Request) -> Response:
        return await handlers["GET" if request.method == "HEAD" else request.method](request)

    return Route(path, endpoint, methods=list(handlers))


def build_app(store: HubStore, config: HubConfig | None = None) -> Starlette:
    api = HubAPI(store, config or HubConfig())
    return Starlette(
        routes=[
            Route("/healthz", _health, methods=["GET"]),
            Route(DISCOVERY, api.discovery, methods=["GET"]),
            Route(ROOT, api.api_root, methods=["GET"]),
            # taxii2-client asks for a status without the trailing slash.
            Route(ROOT + "status/{status_id}/", api.status, methods=["GET"]),
            Route(ROOT + "status/{status_id}", api.status, methods=["GET"]),
            Route(ROOT + "collections/", api.collections, methods=["GET"]),
            Route(COLLECTION, api.collection, methods=["GET"]),
            _route(COLLECTION + "objects/", GET=api.get_objects, POST=api.add_objects),
            Route(COLLECTION + "manifest/", api.manifest, methods=["GET"]),
            _route(OBJECT, GET=api.get_object, DELETE=api.delete_object),
            Route(OBJECT + "versions/", api.versions, methods=["GET"]),
        ],
        exception_handlers={TaxiiError: _taxii_error, HTTPException: _http_error, Exception: _server_error},
    )
