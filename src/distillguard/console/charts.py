"""The console's own figures (those an evidence pack does not draw): actions over time, accounts by verdict, and an
account's risk timeline marked with the changes of its standing. The shared ones (traffic, risk timeline, campaign
graph) come from distillguard.plots, so the console and the packs draw a thing the same way.

Imported on first use: plotly's figure classes cost a few tenths of a second and some memory, which a gateway that
never serves a console page should not pay.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go

from distillguard import plots
from distillguard.console.read.audit import Entry
from distillguard.respond.policy import LEVELS

# Actions in a fixed order and colour, so the same action looks the same on every range.
ACTION_COLOURS: Mapping[str, str] = {
    "level_escalated": "#e0603a",
    "level_held_for_review": "#a8327d",
    "level_relaxed": "#4a9c6d",
    "level_expired": "#9aa5b1",
    "level_confirmed": "#5b1a58",
    "level_reversed": "#2f7fb5",
    "case_opened": "#f29e4c",
    "campaign_case_opened": "#c2571a",
    "case_confirmed": "#3d2b56",
    "case_reversed": "#1f5f8b",
    "case_escalated": "#7d5ba6",
    "appeal_filed": "#e8c547",
}


def _moment(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, UTC)


def over_range(fig: go.Figure, since_us: int, until_us: int, bucket_us: int) -> go.Figure:
    """Show the whole range, with each bar as wide as its time bucket (plotly would size bars by their spacing, a
    sliver when there are few)."""
    fig.update_traces(width=bucket_us / 1000 * 0.9, offset=0, selector={"type": "bar"})
    fig.update_xaxes(range=[_moment(since_us), _moment(until_us)], type="date")
    return fig


def actions(rows: Sequence[tuple[int, str, int]], since_us: int, until_us: int, bucket_us: int) -> go.Figure:
    """Audit actions per time bucket, stacked by action: ``rows`` are (bucket start us, action, count)."""
    by_action: dict[str, dict[int, int]] = defaultdict(dict)
    for start, action, count in rows:
        by_action[action][start] = by_action[action].get(start, 0) + count
    order = [a for a in ACTION_COLOURS if a in by_action] + sorted(set(by_action) - set(ACTION_COLOURS))
    fig = go.Figure()
    for action in order:
        counts = by_action[action]
        xs = sorted(counts)
        fig.add_trace(
            go.Bar(
                x=[_moment(x) for x in xs],
                y=[counts[x] for x in xs],
                name=action.replace("_", " "),
                marker={"color": ACTION_COLOURS.get(action, "#7b8794")},
            )
        )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="actions", rangemode="tozero")
    return over_range(plots.styled(fig, "Actions taken", 300), since_us, until_us, bucket_us)


def verdicts(scored: Mapping[str, int], standing: Mapping[str, int]) -> go.Figure:
    """Accounts per level: what detection says (scores) and what applies (standings), side by side."""
    shown = [level for level in LEVELS if level != "allow"]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=shown,
            y=[scored.get(level, 0) for level in shown],
            name="verdict (detection)",
            marker={"color": [plots.VERDICT_COLOURS[level] for level in shown]},
        )
    )
    fig.add_trace(
        go.Bar(
            x=shown,
            y=[standing.get(level, 0) for level in shown],
            name="standing (applied)",
            marker={"color": "rgba(0,0,0,0)", "line": {"color": "#1f2933", "width": 1.5}},
        )
    )
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="accounts", rangemode="tozero")
    return plots.styled(fig, "Flagged accounts by level", 300)


def account_risk(
    history: Sequence[Mapping[str, Any]], changes: Sequence[Entry], thresholds: Mapping[str, float]
) -> go.Figure:
    """The account's risk over time with each move of its standing marked (what moved it, who, why)."""
    fig = plots.risk_timeline(history, thresholds=thresholds, title="Risk over time")
    moves = [e for e in changes if e.detail.get("to") is not None]
    if moves:
        fig.add_trace(
            go.Scatter(
                x=[e.at for e in moves],
                y=[1.0] * len(moves),
                mode="markers",
                name="standing changed",
                marker={
                    "symbol": "triangle-down",
                    "size": 11,
                    "color": [plots.VERDICT_COLOURS.get(str(e.detail.get("to")), plots.UNKNOWN_COLOUR) for e in moves],
                    "line": {"width": 1, "color": "#1f2933"},
                },
                hovertext=[
                    html.escape(
                        f"{e.action.replace('level_', '')}: {e.detail.get('from')} → {e.detail.get('to')} by {e.actor}"
                        + (f" ({e.detail['reason']})" if e.detail.get("reason") else ""),
                        quote=False,
                    )
                    for e in moves
                ],
                hoverinfo="text",
            )
        )
        fig.update_layout(showlegend=True)
    return fig


def warm_up() -> None:
    """Load plotly's figure classes and validators by drawing a small figure (a few tenths of a second, once per
    process): run off the event loop when someone logs in, so their first page does not pay for it."""
    plots.figure_json(verdicts({"watch": 1}, {"watch": 1}))
