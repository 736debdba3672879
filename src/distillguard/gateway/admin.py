"""The admin API (reviewers: cases, decisions, the audit trail, standings, labels) and the customer's appeal route.

- ``/admin/v1/...`` takes ``Authorization: Bearer dg-admin-...`` (``distillguard admin token create``); the token's
  name is the reviewer recorded in the audit trail.
- ``POST /v1/appeals`` takes the customer's own API key. It does not go through enforcement: a blocked customer
  can still appeal.

Every answer and error is JSON in OpenAI's shape; the case book is called off the event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, get_args

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.routing import Route
from starlette.types import ASGIApp

from distillguard.config import Level
from distillguard.gateway.errors import GatewayError, invalid
from distillguard.gateway.responses import BytesResponse
from distillguard.gateway.validation import parse_json_body, too_large
from distillguard.respond.book import CaseBook, CaseError, CaseStatus
from distillguard.watermark.checks import CheckError, parse_subject, record_check
from distillguard.watermark.result import DEFAULT_ALPHA
from distillguard.watermark.text import detect

if TYPE_CHECKING:
    from distillguard.gateway.app import Gateway

log = logging.getLogger(__name__)

ADMIN = "/admin/v1"
APPEALS = "/v1/appeals"
# Levels a reviewer may confirm a case at ("allow" is what a reversal gives).
CONFIRM_LEVELS: tuple[Level, ...] = ("watch", "throttle", "degrade", "challenge", "block")
STATUSES: tuple[CaseStatus, ...] = get_args(CaseStatus)
MAX_CASES_PAGE = 1000
MAX_AUDIT_PAGE = 10_000
# The standings a case's detail lists (a campaign case can name many more members; all are in ``members``).
MAX_STANDINGS = 1000
MAX_REASON = 10_000
MAX_CONTACT = 320  # the appeals table's column
MAX_ID = 200
MAX_DETECT_ACCOUNTS = 1000

_CASE_CODES = {400: "invalid_value", 404: "case_not_found", 409: "case_state", 429: "too_many_appeals"}

Handler = Callable[[Request], Awaitable[ASGIApp]]


def _case_error(exc: CaseError, param: str | None = None) -> GatewayError:
    return GatewayError(exc.status, exc.message, _CASE_CODES.get(exc.status, "case_error"), param)


def _json(payload: Any, status: int = 200) -> BytesResponse:
    return BytesResponse(orjson.dumps(payload), status)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"`{name}` must be an integer, got {raw[:40]!r}.", name) from None
    if not low <= value <= high:
        raise invalid(f"`{name}` must be between {low} and {high}, got {value}.", name)
    return value


def _text(body: dict[str, Any], name: str, limit: int, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise GatewayError(400, f"Missing required parameter: '{name}'.", "missing_required_parameter", name)
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"`{name}` must be a non-empty string.", name)
    if len(value) > limit:
        raise invalid(f"`{name}` is longer than {limit} characters.", name)
    return value.strip()


class AdminAPI:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._max_body = gateway.settings.server.max_body_bytes

    # plumbing ---------------------------------------------------------------------------------------
    def _book(self) -> CaseBook:
        if self.gateway.book is None:
            raise GatewayError(
                404, "The response layer is disabled on this gateway (respond.enabled = false).", "respond_disabled"
            )
        return self.gateway.book

    async def _reviewer(self, request: Request) -> tuple[CaseBook, str]:
        """The case book and the name of the admin token's holder; 401 without a valid admin token."""
        book = self._book()
        header = request.headers.get("authorization")
        if not header:
            raise GatewayError(
                401,
                "You didn't provide an admin token. Use 'Authorization: Bearer dg-admin-...' "
                "(issued by `distillguard admin token create`).",
                "invalid_admin_token",
            )
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise GatewayError(
                401, "Malformed Authorization header: expected 'Bearer dg-admin-...'.", "invalid_admin_token"
            )
        name = await run_in_threadpool(book.admin_name, token)
        if name is None:
            raise GatewayError(401, "Incorrect admin token provided: unknown or revoked.", "invalid_admin_token")
        return book, name

    async def _body(self, request: Request) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            raise too_large(self._max_body)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body:
                raise too_large(self._max_body)
            chunks.append(chunk)
        return parse_json_body(b"".join(chunks))

    @staticmethod
    def _handle(handler: Handler) -> Handler:
        """Turn the refusals a handler raises into OpenAI-shaped errors."""

        async def endpoint(request: Request) -> ASGIApp:
            try:
                return await handler(request)
            except GatewayError as err:
                return err.response()
            except CaseError as exc:
                return _case_error(exc).response()
            except ClientDisconnect:
                return BytesResponse(b"", 499)

        return endpoint

    # cases ------------------------------------------------------------------------------------------
    async def list_cases(self, request: Request) -> ASGIApp:
        """GET /admin/v1/cases?status=&limit=&offset="""
        book, _ = await self._reviewer(request)
        status = request.query_params.get("status") or None
        if status is not None and status not in STATUSES:
            raise invalid(f"`status` must be one of {', '.join(STATUSES)}, got {status[:40]!r}.", "status")
        limit = _int_param(request, "limit", 100, 1, MAX_CASES_PAGE)
        offset = _int_param(request, "offset", 0, 0, 2**31)

        def read() -> dict[str, Any]:
            found = book.cases(status, limit, offset)
            return {"object": "list", "data": [c.to_json() for c in found], "counts": book.count_cases()}

        return _json(await run_in_threadpool(read))

    async def show_case(self, request: Request) -> ASGIApp:
        """GET /admin/v1/cases/{case_id}: the case, its audit entries, appeals and its members' standings."""
        book, _ = await self._reviewer(request)
        case_id = request.path_params["case_id"]
        return _json(await run_in_threadpool(case_detail, book, case_id))

    def _decide(self, action: str) -> Handler:
        """POST /admin/v1/cases/{case_id}/confirm|reverse|escalate"""

        async def decide(request: Request) -> ASGIApp:
            book, reviewer = await self._reviewer(request)
            case_id = request.path_params["case_id"]
            body = await self._body(request)
            reason = _text(body, "reason", MAX_REASON)
            assert reason is not None
            level: Level | None = None
            if body.get("level") is not None:
                if action != "confirm":
                    raise invalid(f"`level` applies only to confirm, not {action}.", "level")
                if body["level"] not in CONFIRM_LEVELS:
                    raise invalid(f"`level` must be one of {', '.join(CONFIRM_LEVELS)}.", "level")
                level = body["level"]
            responder = self.gateway.responder

            def act() -> dict[str, Any]:
                if action == "confirm":
                    case = book.confirm(case_id, reviewer, reason, level)
                elif action == "reverse":
                    case = book.reverse(case_id, reviewer, reason)
                else:
                    case = book.escalate(case_id, reviewer, reason)
                if responder is not None and action != "escalate":
                    # Apply the decision in this process now; other replicas pick it up at their next sync.
                    responder.refresh(case.members)
                return case.to_json()

            try:
                case = await run_in_threadpool(act)
            except CaseError as exc:
                raise _case_error(exc, "reason" if exc.status == 400 else None) from None
            log.info(
                "case reviewed",
                extra={"case_id": case_id, "action": action, "reviewer": reviewer, "status": case["status"]},
            )
            return _json(case)

        return decide

    # the audit trail, standings, labels -------------------------------------------------------------
    async def audit(self, request: Request) -> ASGIApp:
        """GET /admin/v1/audit?since=&limit="""
        book, _ = await self._reviewer(request)
        since = _int_param(request, "since", 0, 0, 2**62)
        limit = _int_param(request, "limit", 1000, 1, MAX_AUDIT_PAGE)
        entries = await run_in_threadpool(book.audit, since, limit)
        return _json({"object": "list", "data": [e.to_json() for e in entries]})

    async def verify(self, request: Request) -> ASGIApp:
        """GET /admin/v1/audit/verify: recompute the hash chain."""
        book, reviewer = await self._reviewer(request)
        checked, broken = await run_in_threadpool(book.verify)
        if broken is not None:
            log.error("audit trail broken", extra={"first_broken": broken, "checked_by": reviewer})
        return _json({"checked": checked, "intact": broken is None, "first_broken": broken})

    async def standing(self, request: Request) -> ASGIApp:
        """GET /admin/v1/accounts/{account_id}/standing"""
        book, _ = await self._reviewer(request)
        account_id = request.path_params["account_id"]
        if not account_id or len(account_id) > MAX_ID:
            raise invalid("Not an account id.", "account_id")
        st = await run_in_threadpool(book.standing, account_id)
        return _json(st.to_json())

    async def labels(self, request: Request) -> ASGIApp:
        """GET /admin/v1/labels: reviewers' decisions as labels (attack / benign), oldest first."""
        book, _ = await self._reviewer(request)
        rows = await run_in_threadpool(lambda: list(book.labels()))
        return _json({"object": "list", "data": rows})

    async def watermark_detect(self, request: Request) -> ASGIApp:
        """POST /admin/v1/watermark/detect {"text", "accounts"?, "clusters"?, "alpha"?, "subject"?}: the text
        watermark's detector. With ``subject`` ("account:ID", "campaign:ID", "model:NAME" or "text:LABEL") the
        result is recorded as a check about it (``check_id`` in the answer), for the console and evidence packs."""
        _, reviewer = await self._reviewer(request)
        body = await self._body(request)
        subject = None
        if body.get("subject") is not None:
            if not isinstance(body["subject"], str):
                raise invalid("`subject` must be a string such as 'account:ID'.", "subject")
            try:
                subject = parse_subject(body["subject"])
            except CheckError as exc:
                raise invalid(str(exc), "subject") from None
        text = body.get("text")
        if not isinstance(text, str):
            raise GatewayError(
                400, "Missing required parameter: 'text' (a string).", "missing_required_parameter", "text"
            )
        accounts = body.get("accounts") or []
        if not isinstance(accounts, list) or not all(isinstance(a, str) and 0 < len(a) <= MAX_ID for a in accounts):
            raise invalid("`accounts` must be a list of account ids.", "accounts")
        if len(accounts) > MAX_DETECT_ACCOUNTS:
            raise invalid(f"`accounts` may name at most {MAX_DETECT_ACCOUNTS} accounts.", "accounts")
        clusters = body.get("clusters") or []
        if not isinstance(clusters, list) or not all(isinstance(c, str) and 0 < len(c) <= MAX_ID for c in clusters):
            raise invalid("`clusters` must be a list of cluster ids.", "clusters")
        if len(clusters) > MAX_DETECT_ACCOUNTS:
            raise invalid(f"`clusters` may name at most {MAX_DETECT_ACCOUNTS} clusters.", "clusters")
        alpha = body.get("alpha", DEFAULT_ALPHA)
        if not isinstance(alpha, int | float) or isinstance(alpha, bool) or not 0 < alpha < 1:
            raise invalid("`alpha` must be a number between 0 and 1.", "alpha")
        keys = self.gateway.watermarks.keys_for(accounts, clusters)
        result = await run_in_threadpool(detect, text, keys, float(alpha))
        payload = result.to_json()
        if subject is not None:
            subject_kind, subject_id = subject
            payload["check_id"] = await run_in_threadpool(
                lambda: record_check(
                    self.gateway.store.engine,
                    kind="watermark",
                    subject_kind=subject_kind,
                    subject_id=subject_id,
                    actor="reviewer:" + reviewer,
                    detected=result.detected,
                    p_value=result.p_value,
                    result=result.to_json(),
                )
            )
        return _json(payload)

    # the customer's side ----------------------------------------------------------------------------
    async def appeal(self, request: Request) -> ASGIApp:
        """POST /v1/appeals with the customer's API key: an appeal against a case naming their account."""
        gateway = self.gateway
        started = time.perf_counter()
        event, authorization, _ = gateway._begin(request.scope)
        try:
            book = self._book()
            principal = gateway._identify(authorization, event)
            body = await self._body(request)
            case_id = _text(body, "case_id", MAX_ID)
            message = _text(body, "message", MAX_REASON)
            contact = _text(body, "contact", MAX_CONTACT, required=False)
            assert case_id is not None and message is not None
            event.extra["case_id"] = case_id
            try:
                filed = await run_in_threadpool(book.appeal, case_id, principal.account.account_id, message, contact)
            except CaseError as exc:
                raise _case_error(exc, "case_id" if exc.status in (404, 429) else "message") from None
        except GatewayError as err:
            event.status, event.error_code = err.status, err.code
            gateway.record(event, started)
            return err.response({"x-request-id": event.event_id})
        except ClientDisconnect:
            event.status, event.error_code = 499, "client_disconnected"
            gateway.record(event, started)
            return BytesResponse(b"", 499)
        event.status = 201
        event.extra["appeal_id"] = filed.appeal_id
        gateway.record(event, started)
        log.info("appeal filed", extra={"case_id": case_id, "account_id": filed.account_id})
        return BytesResponse(orjson.dumps(filed.to_json()), 201, {"x-request-id": event.event_id})


def case_detail(book: CaseBook, case_id: str) -> dict[str, Any]:
    """A case with its audit entries, appeals and the standings of (up to ``MAX_STANDINGS``) members."""
    case = book.case(case_id)
    return {
        **case.to_json(),
        "audit": [e.to_json() for e in book.audit(0, MAX_AUDIT_PAGE, case_id=case_id)],
        "appeals": [a.to_json() for a in book.appeals(case_id)],
        "standings": [book.standing(m).to_json() for m in case.members[:MAX_STANDINGS]],
    }


def admin_routes(gateway: Gateway) -> list[Route]:
    api = AdminAPI(gateway)
    h = api._handle
    return [
        Route(f"{ADMIN}/cases", h(api.list_cases), methods=["GET"]),
        Route(f"{ADMIN}/cases/{{case_id}}", h(api.show_case), methods=["GET"]),
        *(
            Route(f"{ADMIN}/cases/{{case_id}}/{action}", h(api._decide(action)), methods=["POST"])
            for action in ("confirm", "reverse", "escalate")
        ),
        Route(f"{ADMIN}/audit", h(api.audit), methods=["GET"]),
        Route(f"{ADMIN}/audit/verify", h(api.verify), methods=["GET"]),
        Route(f"{ADMIN}/accounts/{{account_id:path}}/standing", h(api.standing), methods=["GET"]),
        Route(f"{ADMIN}/labels", h(api.labels), methods=["GET"]),
        Route(f"{ADMIN}/watermark/detect", h(api.watermark_detect), methods=["POST"]),
        # Handles its own errors (and logs the call like every customer call).
        Route(APPEALS, api.appeal, methods=["POST"]),
    ]
