"""Plotly figures shared by the console and the evidence packs' reports: one drawing of each thing, in both places.

Every builder takes plain rows (mappings, as the store and ``case.json`` hold them) and returns a
``plotly.graph_objects.Figure``. The console sends ``figure_json(fig)`` to the browser (``Plotly.newPlot`` with the
JSON's ``data`` and ``layout``); a report embeds ``figure_div(fig, id)`` after one inlined ``plotly_js()``. Nothing is
fetched from the network: the JS ships in the plotly package.

Times in the rows may be ``datetime`` objects, RFC 3339 strings or epoch microseconds (ints).
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import igraph as ig
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from distillguard.detect.verdicts import DEFAULT_THRESHOLDS, VERDICTS
from distillguard.timefmt import as_utc, from_epoch_us, parse_rfc3339

# One colour per verdict, light to dark with rising severity (distinguishable in greyscale and by the common
# colour-vision deficiencies); the console's CSS uses the same values.
VERDICT_COLOURS: Mapping[str, str] = {
    "allow": "#9aa5b1",
    "watch": "#e8c547",
    "throttle": "#f29e4c",
    "degrade": "#e0603a",
    "challenge": "#a8327d",
    "block": "#5b1a58",
}
UNKNOWN_COLOUR = "#cfd6de"
# A campaign edge takes the colour of its strongest evidence's category (clusters/evidence.py KINDS).
CATEGORY_COLOURS: Mapping[str, str] = {
    "account": "#b5306b",
    "content": "#1f6fb2",
    "behaviour": "#d9730d",
    "infrastructure": "#6b7785",
}
OTHER_CATEGORY_COLOUR = "#465463"
# Members drawn in a campaign graph at most (the most firmly linked first): a page stays light for any campaign.
MAX_NODES = 400
# Labels are written next to nodes up to this many members; beyond it they show on hover only.
MAX_LABELLED = 40
# Members drawn as their own line in a traffic plot; the rest are summed as "others".
MAX_SERIES = 12
EVIDENCE_ON_HOVER = 6
DETAIL_CHARS = 160
_FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13}


def when(value: datetime | str | int) -> datetime:
    """A row's time as an aware UTC datetime."""
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, int):
        return from_epoch_us(value)
    return parse_rfc3339(value)


def _esc(value: Any) -> str:
    # Plotly renders <b>, <br> and entities in text: ids and details are data, so their markup is escaped.
    return html.escape(str(value), quote=False)


def styled(fig: go.Figure, title: str, height: int) -> go.Figure:
    """The house style (fonts, margins, grid, legend below), a title and a height, for any figure."""
    fig.update_layout(
        title={"text": _esc(title), "x": 0.01, "xanchor": "left"},
        font=_FONT,
        height=height,
        margin={"l": 56, "r": 24, "t": 56, "b": 48},
        plot_bgcolor="#ffffff",
        paper_bgcolor="#ffffff",
        hoverlabel={"align": "left"},
        legend={"orientation": "h", "y": -0.18},
    )
    fig.update_xaxes(gridcolor="#eef1f4")
    fig.update_yaxes(gridcolor="#eef1f4")
    return fig


def risk_timeline(
    points: Iterable[Mapping[str, Any]],
    *,
    thresholds: Mapping[str, float] | None = None,
    title: str = "Risk over time",
) -> go.Figure:
    """Risk (0..1) over time, one step line per account, with the verdict thresholds (default: detection's) as
    labelled dotted lines.

    ``points``: ``{"at", "risk", "verdict", "account_id"?}`` rows, as ``score_history`` holds them."""
    series: dict[str, list[tuple[datetime, float, str]]] = defaultdict(list)
    for p in points:
        series[str(p.get("account_id") or "risk")].append((when(p["at"]), float(p["risk"]), str(p["verdict"])))
    fig = go.Figure()
    for name in sorted(series):
        rows = sorted(series[name])
        fig.add_trace(
            go.Scatter(
                x=[r[0] for r in rows],
                y=[r[1] for r in rows],
                name=name,
                mode="lines+markers",
                line={"shape": "hv", "width": 2},
                marker={"color": [VERDICT_COLOURS.get(r[2], UNKNOWN_COLOUR) for r in rows], "size": 7},
                # Hover text rather than a template: a template would interpret "%{...}" inside an account id.
                hovertext=[f"{_esc(name)}<br>{r[0]:%Y-%m-%d %H:%M:%S}<br>risk {r[1]:.3f} ({_esc(r[2])})" for r in rows],
                hoverinfo="text",
            )
        )
    levels: Mapping[str, float] = (
        thresholds if thresholds is not None else {str(k): v for k, v in DEFAULT_THRESHOLDS.items()}
    )
    # One layout update with every line and label (add_hline costs ~15 ms a call: a page has a budget).
    drawn = [(v, levels[v]) for v in VERDICTS[1:] if levels.get(v) is not None]
    fig.update_layout(
        shapes=[
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": level,
                "y1": level,
                "line": {"dash": "dot", "width": 1, "color": VERDICT_COLOURS[verdict]},
            }
            for verdict, level in drawn
        ],
        annotations=[
            {
                "xref": "paper",
                "x": 0,
                "yref": "y",
                "y": level,
                "text": verdict,
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "bottom",
                "font": {"size": 11, "color": "#3d4852"},
            }
            for verdict, level in drawn
        ],
    )
    fig.update_yaxes(range=[0, 1.02], title_text="risk")
    fig.update_layout(showlegend=len(series) > 1)
    return styled(fig, title, 340)


def _tokens(p: Mapping[str, Any]) -> int:
    if "tokens" in p:
        return int(p["tokens"] or 0)
    return int(p.get("prompt_tokens") or 0) + int(p.get("completion_tokens") or 0)


def traffic(
    points: Iterable[Mapping[str, Any]],
    *,
    per_member: bool = False,
    title: str = "Traffic",
) -> go.Figure:
    """Calls over time, and tokens on a second axis; with ``per_member``, one line of calls per account.

    ``points``: ``{"at", "calls", "tokens"? (or "prompt_tokens" and "completion_tokens"), "errors"?, "refused"?,
    "account_id"?}`` rows, one per time bucket (and account), as ``traffic_minutes`` or a bucketed event query gives
    them. Per member, the :data:`MAX_SERIES` busiest accounts get their own line and the rest one "others" line."""
    if per_member:
        return _traffic_per_member(points, title)
    totals: dict[datetime, list[int]] = defaultdict(lambda: [0, 0, 0])
    for p in points:
        bucket = totals[when(p["at"])]
        bucket[0] += int(p["calls"])
        bucket[1] += _tokens(p)
        bucket[2] += int(p.get("errors") or 0) + int(p.get("refused") or 0)
    xs = sorted(totals)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=xs, y=[totals[x][0] for x in xs], name="calls", marker={"color": "#4a6fa5"}, yaxis="y"))
    if any(totals[x][2] for x in xs):
        fig.add_trace(go.Bar(x=xs, y=[totals[x][2] for x in xs], name="refused or failed", marker={"color": "#e0603a"}))
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[totals[x][1] for x in xs],
            name="tokens",
            mode="lines",
            line={"color": "#2f3e46", "width": 1.5},
            yaxis="y2",
        )
    )
    fig.update_layout(
        barmode="overlay",
        yaxis={"title": {"text": "calls"}, "rangemode": "tozero"},
        yaxis2={
            "title": {"text": "tokens"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
        },
    )
    return styled(fig, title, 320)


def _traffic_per_member(points: Iterable[Mapping[str, Any]], title: str) -> go.Figure:
    by_member: dict[str, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    for p in points:
        by_member[str(p.get("account_id") or "all")][when(p["at"])] += int(p["calls"])
    volume = {m: sum(s.values()) for m, s in by_member.items()}
    ranked = sorted(by_member, key=lambda m: (-volume[m], m))
    shown, rest = ranked[:MAX_SERIES], ranked[MAX_SERIES:]
    series = {m: by_member[m] for m in shown}
    if rest:
        others: dict[datetime, int] = defaultdict(int)
        for m in rest:
            for x, calls in by_member[m].items():
                others[x] += calls
        series[f"{len(rest)} others"] = others
    fig = go.Figure()
    # Stacked bars: a bucket without calls is simply empty (an area would draw a slope across it).
    for name, counts in series.items():
        xs = sorted(counts)
        fig.add_trace(
            go.Bar(
                x=xs,
                y=[counts[x] for x in xs],
                name=name,
                hovertext=[f"{_esc(name)}<br>{x:%Y-%m-%d %H:%M}<br>{counts[x]} calls" for x in xs],
                hoverinfo="text",
            )
        )
    fig.update_layout(barmode="stack", bargap=0.05)
    fig.update_yaxes(title_text="calls", rangemode="tozero")
    return styled(fig, title, 340)


def _short(text: str, limit: int = DETAIL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def edge_hover(link: Mapping[str, Any]) -> str:
    """A link's hover text: the pair, its weight and the evidence on it (escaped: ids and details are data)."""
    lines = [f"<b>{_esc(link['a'])} ~ {_esc(link['b'])}</b> weight {float(link['weight']):.2f}"]
    evidence = list(link.get("evidence") or [])
    for e in evidence[:EVIDENCE_ON_HOVER]:
        lines.append(
            f"{_esc(e.get('kind'))} ({_esc(e.get('category'))}, "
            f"{float(e.get('score') or 0.0):.2f}): {_esc(_short(str(e.get('detail') or '')))}"
        )
    if len(evidence) > EVIDENCE_ON_HOVER:
        lines.append(f"… and {len(evidence) - EVIDENCE_ON_HOVER} more")
    return "<br>".join(lines)


def _positions(names: Sequence[str], edges: Sequence[tuple[int, int]]) -> list[tuple[float, float]]:
    graph = ig.Graph(n=len(names), edges=list(edges))
    start = [list(p) for p in graph.layout_circle().coords]
    if len(names) < 3:
        return [(float(x), float(y)) for x, y in start]
    # Kamada-Kawai from the circle is deterministic (Fruchterman-Reingold draws random numbers); its iteration count
    # is bounded so a large campaign costs a fraction of a second.
    layout = graph.layout_kamada_kawai(seed=start, maxiter=min(50 * len(names), 4000))
    return [(float(x), float(y)) for x, y in layout.coords]


def _strongest_category(link: Mapping[str, Any]) -> str:
    evidence = link.get("evidence") or []
    if not evidence:
        return "other"
    return str(max(evidence, key=lambda e: float(e.get("score") or 0.0)).get("category") or "other")


def campaign_graph(
    members: Iterable[Mapping[str, Any]],
    links: Iterable[Mapping[str, Any]],
    *,
    title: str = "Campaign",
    max_nodes: int = MAX_NODES,
) -> go.Figure:
    """The accounts of a campaign and the links between them.

    ``members``: ``{"account_id", "verdict"?, "link_strength"?}`` (``Campaign.to_json()["members"]``);
    ``links``: ``{"a", "b", "weight", "evidence": [{"kind", "category", "score", "detail"}]}`` (the campaign's
    ``links``). Nodes are coloured by verdict and sized by link strength; an edge is coloured by the category of its
    strongest evidence (account, content, behaviour, infrastructure), its width follows its weight, and hovering its
    midpoint shows all the evidence on it. The layout is deterministic: the same campaign is drawn the same
    way every time. Above ``max_nodes`` members only the most firmly linked are drawn (the title says so)."""
    everyone = {str(m["account_id"]): m for m in members}
    ranked = sorted(everyone, key=lambda a: (-float(everyone[a].get("link_strength") or 0.0), a))
    names = sorted(ranked[: max(1, max_nodes)])
    index = {a: i for i, a in enumerate(names)}
    drawn = [lk for lk in links if str(lk["a"]) in index and str(lk["b"]) in index and lk["a"] != lk["b"]]
    drawn.sort(key=lambda lk: (str(lk["a"]), str(lk["b"])))
    pos = _positions(names, [(index[str(lk["a"])], index[str(lk["b"])]) for lk in drawn])
    fig = go.Figure()
    # Edges by the category of their strongest evidence (its colour) and in three width classes (by weight): one
    # trace per pair, so thousands of edges stay a handful of drawing calls.
    heaviest = max((float(lk["weight"]) for lk in drawn), default=1.0) or 1.0
    classes: dict[tuple[str, int], tuple[list[float | None], list[float | None]]] = defaultdict(lambda: ([], []))
    mid_x, mid_y, mid_text = [], [], []
    for lk in drawn:
        (x0, y0), (x1, y1) = pos[index[str(lk["a"])]], pos[index[str(lk["b"])]]
        xs, ys = classes[(_strongest_category(lk), 1 + min(2, int(3 * float(lk["weight"]) / heaviest)))]
        xs.extend((x0, x1, None))
        ys.extend((y0, y1, None))
        mid_x.append((x0 + x1) / 2)
        mid_y.append((y0 + y1) / 2)
        mid_text.append(edge_hover(lk))
    shown: set[str] = set()
    for (category, width), (xs, ys) in sorted(classes.items()):
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name=f"link: {category}",
                legendgroup=f"link: {category}",
                showlegend=category not in shown,
                hoverinfo="skip",
                opacity=0.6,
                line={"width": 0.8 * width, "color": CATEGORY_COLOURS.get(category, OTHER_CATEGORY_COLOUR)},
            )
        )
        shown.add(category)
    fig.add_trace(
        go.Scatter(
            x=mid_x,
            y=mid_y,
            mode="markers",
            name="links",
            showlegend=False,
            marker={"size": 9, "color": "rgba(70, 84, 99, 0.12)", "symbol": "diamond"},
            hovertext=mid_text,
            hoverinfo="text",
        )
    )
    strongest = max((float(everyone[a].get("link_strength") or 0.0) for a in names), default=1.0) or 1.0
    labelled = len(names) <= MAX_LABELLED
    by_verdict: dict[str, list[str]] = defaultdict(list)
    for a in names:
        by_verdict[str(everyone[a].get("verdict") or "unknown")].append(a)
    order = [v for v in VERDICTS if v in by_verdict] + sorted(set(by_verdict) - set(VERDICTS))
    for verdict in order:
        group = by_verdict[verdict]
        fig.add_trace(
            go.Scatter(
                x=[pos[index[a]][0] for a in group],
                y=[pos[index[a]][1] for a in group],
                mode="markers+text" if labelled else "markers",
                name=verdict,
                text=[_esc(a) for a in group],
                textposition="top center",
                textfont={"size": 11, "color": "#1f2933"},
                marker={
                    "color": VERDICT_COLOURS.get(verdict, UNKNOWN_COLOUR),
                    "size": [10 + 14 * float(everyone[a].get("link_strength") or 0.0) / strongest for a in group],
                    "line": {"width": 1, "color": "#ffffff"},
                },
                hovertext=[
                    f"{_esc(a)}<br>{_esc(verdict)}, link strength {float(everyone[a].get('link_strength') or 0.0):.2f}"
                    for a in group
                ],
                hoverinfo="text",
            )
        )
    if len(everyone) > len(names):
        title = f"{title} ({len(names)} of {len(everyone)} members shown, the most firmly linked)"
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    fig.update_layout(hovermode="closest", legend={"title": {"text": "verdict"}})
    return styled(fig, title, 520)


def figure_json(fig: go.Figure) -> str:
    """The figure as JSON (``{"data", "layout"}``) for ``Plotly.newPlot`` in the console."""
    return str(fig.to_json())


def figure_div(fig: go.Figure, div_id: str) -> str:
    """The figure as an HTML ``<div>`` and its ``<script>``, for a page that already loads :func:`plotly_js`."""
    return str(
        fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=div_id,
            config={"displaylogo": False, "responsive": True},
        )
    )


def plotly_js() -> str:
    """plotly.js (minified) as shipped in the plotly package: inlined in a report, served by the console."""
    return str(get_plotlyjs())
