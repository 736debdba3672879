"""The pack's ``report.html``: one self-contained page (inline CSS, plotly.js inlined from the plotly package, the
figures as inline JSON) that opens from disk with no network, rendered from the pack's own ``case.json`` document so
the two never disagree."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from jinja2 import ChainableUndefined, Environment, select_autoescape
from markupsafe import Markup, escape

from distillguard import plots

# Rows of a table shown in the page (case.json has all of them).
MAX_ROWS = 500
MAX_AUDIT = 2000
MAX_EXCHANGES = 300
MAX_REASON_ACCOUNTS = 50
# Accounts drawn in the risk timeline (the riskiest): more lines than this are unreadable.
TIMELINE_ACCOUNTS = 12


def _num(value: Any) -> str:
    return (
        f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "—" if value is None else str(value)
    )


def _risk(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) and not isinstance(value, bool) else "—"


def _pvalue(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) and not isinstance(value, bool) else "—"


def _when(value: Any) -> str:
    # "2026-03-02T09:04:00.000000Z" reads as "2026-03-02 09:04:00Z" (case.json keeps the full form).
    if not isinstance(value, str) or "T" not in value:
        return "—" if not value else str(value)
    return value.replace("T", " ", 1).split(".")[0].rstrip("Z") + "Z"


def _verdict(value: Any) -> Markup | str:
    if not value:
        return "—"
    return Markup('<span class="verdict {0}">{0}</span>').format(escape(str(value)))


def _environment() -> Environment:
    env = Environment(
        autoescape=select_autoescape(default=True, default_for_string=True),
        # The document's optional parts (a campaign, a score) may be absent: reading into them gives nothing.
        undefined=ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_num, risk=_risk, pvalue=_pvalue, verdict=_verdict, when=_when)
    return env


def _graph_inputs(doc: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The members and links to draw: the campaign's, or for an account the links of its campaigns that touch it."""
    verdicts = {a["account_id"]: (a.get("score") or {}).get("verdict") for a in doc["accounts"]}
    if doc.get("campaign"):
        body = doc["campaign"]
        links = list(body.get("links") or [])
        listed = {str(m.get("account_id")): m for m in body.get("members") or []}
        members = [
            {
                "account_id": a["account_id"],
                "verdict": verdicts.get(a["account_id"]) or (listed.get(a["account_id"]) or {}).get("verdict"),
                "link_strength": a.get("link_strength"),
            }
            for a in doc["accounts"]
        ]
        return members, links
    links = [lk for c in doc.get("campaigns") or [] for lk in c.get("links") or []]
    ends = sorted({str(e) for lk in links for e in (lk["a"], lk["b"])})
    return [{"account_id": a, "verdict": verdicts.get(a), "link_strength": None} for a in ends], links


def figures(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, HTML div) of each plot the document has data for: risk timeline, traffic, campaign graph."""
    out: list[tuple[str, str]] = []
    riskiest = [a for a in doc["accounts"] if a.get("history")][:TIMELINE_ACCOUNTS]
    if riskiest:
        shown = "" if len(riskiest) == 1 else f" ({len(riskiest)} riskiest accounts)"
        fig = plots.risk_timeline([h for a in riskiest for h in a["history"]], title="Risk over time" + shown)
        out.append(("Risk over time", plots.figure_div(fig, "plot-risk")))
    traffic = doc.get("traffic")
    if traffic and traffic.get("series"):
        minutes = traffic["bucket_seconds"] // 60
        per_member = doc["subject"]["kind"] == "campaign"
        title = f"{'Calls per member' if per_member else 'Traffic'} ({minutes:,}-minute buckets)"
        fig = plots.traffic(traffic["series"], per_member=per_member, title=title)
        out.append((title, plots.figure_div(fig, "plot-traffic")))
    members, links = _graph_inputs(doc)
    if links:
        label = (
            f"Campaign {doc['subject']['id']}" if doc.get("campaign") else f"Campaign links of {doc['subject']['id']}"
        )
        fig = plots.campaign_graph(members, links, title=label)
        out.append(("Campaign graph", plots.figure_div(fig, "plot-graph")))
    return out


def render(doc: dict[str, Any]) -> str:
    """The report page for a pack's document (``case.json``, with ``deployment``, ``created_at``, ``generator``)."""
    env = _environment()
    source = files("distillguard.cases").joinpath("templates")
    template = env.from_string(source.joinpath("report.html.j2").read_text(encoding="utf-8"))
    body = doc.get("campaign") or {}
    links = body.get("links") or [lk for c in doc.get("campaigns") or [] for lk in c.get("links") or []]
    return template.render(
        doc=doc,
        css=source.joinpath("report.css").read_text(encoding="utf-8"),
        plotly_js=plots.plotly_js(),
        figures=figures(doc),
        links=links,
        links_omitted=body.get("links_omitted") or 0,
        max_rows=MAX_ROWS,
        max_audit=MAX_AUDIT,
        max_exchanges=MAX_EXCHANGES,
        max_reason_accounts=MAX_REASON_ACCOUNTS,
    )
