"""The figures the console and the evidence packs share: what each draws from its rows, drawn the same way every
time, with the evidence on the campaign graph's edges and data never read as markup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from distillguard import plots

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def campaign(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    members = [
        {"account_id": f"acct-{i:03d}", "verdict": ("watch", "degrade", "block")[i % 3], "link_strength": 1 + i % 7}
        for i in range(n)
    ]
    links = [
        {
            "a": f"acct-{i:03d}",
            "b": f"acct-{(i * 7 + 1) % n:03d}",
            "weight": 1.0 + i % 4,
            "evidence": [
                {"kind": "payment", "category": "identity", "score": 0.9, "detail": f"card fp_{i}"},
                {"kind": "template", "category": "content", "score": 0.7, "detail": "<b>same</b> template"},
            ],
        }
        for i in range(n)
        if (i * 7 + 1) % n != i
    ]
    return members, links


def test_the_campaign_graph_is_deterministic_and_carries_the_evidence() -> None:
    members, links = campaign(30)
    fig = plots.campaign_graph(members, links, title="clu_1")
    again = plots.campaign_graph(list(reversed(members)), list(reversed(links)), title="clu_1")
    assert plots.figure_json(fig) == plots.figure_json(again)
    data = orjson.loads(plots.figure_json(fig))["data"]
    nodes = {t["name"]: t for t in data if t.get("mode", "").startswith("markers") and t.get("name") != "links"}
    assert set(nodes) == {"watch", "degrade", "block"}
    assert nodes["block"]["marker"]["color"] == plots.VERDICT_COLOURS["block"]
    assert sum(len(t["x"]) for t in nodes.values()) == 30 and "text" in nodes["watch"]["mode"]  # labelled
    [edges] = [t for t in data if t.get("name") == "links"]
    assert len(edges["hovertext"]) == len(links)
    hover = edges["hovertext"][0]
    assert "payment (identity, 0.90): card fp_" in hover and "&lt;b&gt;same&lt;/b&gt; template" in hover
    # Edges take the colour of their strongest evidence's category, one legend entry per category.
    lines = [t for t in data if t.get("mode") == "lines"]
    assert {t["name"] for t in lines} == {"link: identity"}
    assert [t["showlegend"] for t in lines].count(True) == 1
    assert sum(t["x"].count(None) for t in lines) == len(links)


def test_campaign_edges_are_coloured_by_their_strongest_evidence() -> None:
    members = [{"account_id": a, "verdict": "block", "link_strength": 1.0} for a in "abcd"]

    def link(a: str, b: str, category: str) -> dict[str, Any]:
        evidence = [{"kind": "k", "category": "infrastructure", "score": 0.3, "detail": "same /24"}]
        evidence.append({"kind": "k2", "category": category, "score": 0.9, "detail": "strong"})
        return {"a": a, "b": b, "weight": 2.0, "evidence": evidence}

    links = [link("a", "b", "account"), link("b", "c", "content"), link("c", "d", "content"), link("a", "d", "x")]
    data = orjson.loads(plots.figure_json(plots.campaign_graph(members, links)))["data"]
    colour = {t["name"]: t["line"]["color"] for t in data if t.get("mode") == "lines"}
    assert colour == {
        "link: account": plots.CATEGORY_COLOURS["account"],
        "link: content": plots.CATEGORY_COLOURS["content"],
        "link: x": plots.OTHER_CATEGORY_COLOUR,
    }


def test_a_large_campaign_draws_its_most_firmly_linked_members_without_labels() -> None:
    members, links = campaign(plots.MAX_NODES + 50)
    fig = plots.campaign_graph(members, links, title="clu_big")
    data = orjson.loads(plots.figure_json(fig))
    drawn = [x for t in data["data"] if t.get("name") in ("watch", "degrade", "block") for x in t["x"]]
    assert len(drawn) == plots.MAX_NODES
    assert f"{plots.MAX_NODES} of {plots.MAX_NODES + 50} members shown" in data["layout"]["title"]["text"]
    assert all(t["mode"] == "markers" for t in data["data"] if t.get("name") in ("watch", "degrade", "block"))
    fewer = orjson.loads(plots.figure_json(plots.campaign_graph(members, links, max_nodes=50)))
    assert sum(len(t["x"]) for t in fewer["data"] if t.get("name") in ("watch", "degrade", "block")) == 50


def test_the_risk_timeline_has_a_line_per_account_and_the_thresholds() -> None:
    rows = [
        {"account_id": a, "at": T0 + timedelta(hours=h), "risk": r, "verdict": v}
        for a in ("a", "b")
        for h, r, v in ((0, 0.2, "allow"), (1, 0.55, "throttle"), (2, 0.97, "block"))
    ]
    fig = orjson.loads(plots.figure_json(plots.risk_timeline(rows)))
    assert [t["name"] for t in fig["data"]] == ["a", "b"] and fig["data"][0]["y"] == [0.2, 0.55, 0.97]
    assert fig["data"][0]["marker"]["color"][-1] == plots.VERDICT_COLOURS["block"]
    assert sorted(s["y0"] for s in fig["layout"]["shapes"]) == [0.3, 0.5, 0.7, 0.85, 0.95]
    custom = orjson.loads(plots.figure_json(plots.risk_timeline(rows[:1], thresholds={"block": 0.9})))
    assert [s["y0"] for s in custom["layout"]["shapes"]] == [0.9]


def test_traffic_sums_buckets_and_splits_members_with_the_rest_as_others() -> None:
    rows: list[dict[str, Any]] = [
        {"account_id": f"m{i % 20}", "at": T0 + timedelta(minutes=i // 20), "calls": 1 + i % 20, "tokens": 100}
        for i in range(200)
    ]
    total = orjson.loads(plots.figure_json(plots.traffic(rows)))
    calls = next(t for t in total["data"] if t["name"] == "calls")
    tokens = next(t for t in total["data"] if t["name"] == "tokens")
    assert len(calls["y"]) == 10 and sum(calls["y"]) == sum(r["calls"] for r in rows)
    assert tokens["yaxis"] == "y2" and sum(tokens["y"]) == 200 * 100
    split = orjson.loads(plots.figure_json(plots.traffic(rows, per_member=True)))
    names = [t["name"] for t in split["data"]]
    assert len(names) == plots.MAX_SERIES + 1 and names[0] == "m19" and names[-1] == "8 others"
    assert sum(sum(t["y"]) for t in split["data"]) == sum(r["calls"] for r in rows)


def test_a_figure_embeds_as_a_div_without_its_library() -> None:
    div = plots.figure_div(plots.risk_timeline([{"at": "2026-03-02T09:00:00Z", "risk": 0.4, "verdict": "watch"}]), "x")
    assert 'id="x"' in div and "Plotly.newPlot" in div and len(div) < 50_000
    assert plots.plotly_js().startswith("/**") and len(plots.plotly_js()) > 1_000_000
