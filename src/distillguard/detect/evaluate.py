"""``distillguard evaluate``: how well verdicts separate attackers from legitimate users, against baselines."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score, roc_auc_score, roc_curve

from distillguard.detect.verdicts import FLAGGED
from distillguard.events.jsonl import read_jsonl

BENIGN = "benign"


@dataclass(frozen=True)
class Label:
    label: str
    population: str
    campaign_id: str | None


def read_labels(path: Path) -> dict[str, Label]:
    labels = {}
    for row in read_jsonl(path):
        labels[row["account_id"]] = Label(row["label"], row.get("population") or row["label"], row.get("campaign_id"))
    return labels


def labels_from_glasswally(path: Path) -> dict[str, Label]:
    """The peer log labels requests with ``campaign_label``; an account is an attacker if any request is."""
    labels: dict[str, Label] = {}
    for row in read_jsonl(path):
        campaign = row.get("campaign_label")
        account = row["account_id"]
        if campaign:
            labels[account] = Label("attack", "peer_campaign", campaign)
        else:
            labels.setdefault(account, Label(BENIGN, "peer_benign", None))
    return labels


def tpr_at_fpr(y: np.ndarray, scores: np.ndarray, fpr_target: float) -> float:
    """The share of attackers caught at the strictest threshold whose benign false-positive rate <= target."""
    if y.min() == y.max():
        return float("nan")
    fpr, tpr, _ = roc_curve(y, scores)
    ok = fpr <= fpr_target
    return float(tpr[ok].max()) if ok.any() else 0.0


def _auc(y: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(y, scores)) if 0 < y.sum() < len(y) else float("nan")


def evaluate(
    verdicts: list[dict[str, Any]],
    labels: Mapping[str, Label],
    baselines: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, Any]:
    rows = [v for v in verdicts if v["account_id"] in labels]
    if not rows:
        raise ValueError("no verdict matches a labelled account")
    accounts = [v["account_id"] for v in rows]
    y = np.array([labels[a].label != BENIGN for a in accounts], dtype=int)
    risk = np.array([v["risk"] for v in rows], dtype=float)
    flagged = np.array([v["verdict"] in FLAGGED for v in rows])
    population = [labels[a].population for a in accounts]

    per_population: dict[str, dict[str, Any]] = {}
    for pop in sorted(set(population)):
        idx = [i for i, p in enumerate(population) if p == pop]
        members = [rows[i] for i in idx]
        entry: dict[str, Any] = {
            "accounts": len(idx),
            "attack": bool(y[idx[0]]),
            "flagged_share": float(flagged[idx].mean()),
            "blocked": sum(1 for m in members if m["verdict"] == "block"),
        }
        if y[idx[0]]:
            benign_idx = [i for i in range(len(rows)) if not y[i]]
            sub = idx + benign_idx
            entry["roc_auc_vs_benign"] = _auc(y[sub], risk[sub])
            untils = [m["events_until_flagged"] for m in members if m.get("events_until_flagged") is not None]
            entry["median_events_until_flagged"] = statistics.median(untils) if untils else None
            total = sum(m.get("events") or 0 for m in members)
            served = sum(
                (m["events_until_flagged"] if m.get("events_until_flagged") is not None else m.get("events") or 0)
                for m in members
            )
            entry["served_before_flagged_share"] = served / total if total else None
            if baselines:
                entry["baselines_auc"] = {
                    name: _auc(y[sub], np.array([scores.get(accounts[i], 0.0) for i in sub]))
                    for name, scores in baselines.items()
                }
        per_population[pop] = entry

    benign = y == 0
    report: dict[str, Any] = {
        "accounts": len(rows),
        "attack_accounts": int(y.sum()),
        "roc_auc": _auc(y, risk),
        "tpr_at_fpr_1pct": tpr_at_fpr(y, risk, 0.01),
        "tpr_at_fpr_0_1pct": tpr_at_fpr(y, risk, 0.001),
        "flagged_attack_share": float(flagged[~benign].mean()) if (~benign).any() else None,
        "flagged_benign_share": float(flagged[benign].mean()) if benign.any() else None,
        "populations": per_population,
    }
    campaigns = campaign_metrics(rows, labels)
    if campaigns is not None:
        report["clusters"] = campaigns
    if baselines:
        report["baselines"] = {
            name: {
                "roc_auc": _auc(y, np.array([scores.get(a, 0.0) for a in accounts])),
                "tpr_at_fpr_1pct": tpr_at_fpr(y, np.array([scores.get(a, 0.0) for a in accounts]), 0.01),
            }
            for name, scores in baselines.items()
        }
    return report


def baseline_scores(events: Path, input_format: str, accounts: list[str]) -> dict[str, dict[str, float]]:
    """Run the baselines over the event log (in time order)."""
    from distillguard.detect.analyze import AnalyzeReport, read_rows
    from distillguard.detect.baselines import BaselineScores

    rows = read_rows(events, input_format, AnalyzeReport())
    rows.sort(key=lambda r: r[0])
    base = BaselineScores()
    for row in rows:
        base.observe(row[1], row[6].content_sig)
    return base.scores(accounts)


def summary_rows(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Headline figures as (name, value) for a table."""

    def fmt(x: Any) -> str:
        if x is None:
            return "-"
        return f"{x:.4f}" if isinstance(x, float) else str(x)

    rows = [
        (k, fmt(report[k]))
        for k in (
            "accounts",
            "attack_accounts",
            "roc_auc",
            "tpr_at_fpr_1pct",
            "tpr_at_fpr_0_1pct",
            "flagged_attack_share",
            "flagged_benign_share",
        )
    ]
    clusters = report.get("clusters") or {}
    for k in ("ari", "clustered_share", "campaign_recall", "benign_in_attack_cluster_share"):
        if k in clusters:
            rows.append((f"clusters {k}", fmt(clusters[k])))
    for name, b in (report.get("baselines") or {}).items():
        rows.append((f"baseline {name} roc_auc", fmt(b["roc_auc"])))
    return rows


def by_population(report: Mapping[str, Any]) -> dict[str, list[str]]:
    table: dict[str, list[str]] = defaultdict(list)
    for pop, e in report["populations"].items():
        table[pop] = [
            "attack" if e["attack"] else "benign",
            str(e["accounts"]),
            f"{e['flagged_share']:.3f}",
            str(e["blocked"]),
            f"{e.get('roc_auc_vs_benign', float('nan')):.4f}" if e["attack"] else "",
            str(e.get("median_events_until_flagged") or "") if e["attack"] else "",
            " ".join(f"{k}={v:.3f}" for k, v in (e.get("baselines_auc") or {}).items()),
        ]
    return table


def campaign_metrics(verdicts: list[dict[str, Any]], labels: Mapping[str, Label]) -> dict[str, Any] | None:
    """How the clusters in the verdicts (``cluster_id``) match the labelled campaigns, or None without campaigns.

    - ``ari``: adjusted Rand index of clusters vs. campaigns over the accounts of campaigns with at least two
      accounts (an unclustered account is a cluster of its own);
    - ``campaign_recall``: share of those campaigns with most of their accounts flagged;
    - ``benign_in_attack_cluster_share``: benign accounts in a cluster most of whose members are flagged.
    """
    by_campaign: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for v in verdicts:
        campaign = labels[v["account_id"]].campaign_id
        if campaign is not None and labels[v["account_id"]].label != BENIGN:
            by_campaign[campaign].append(v)
    multi = {c: members for c, members in by_campaign.items() if len(members) >= 2}
    if not multi:
        return None
    truth, found = [], []
    for campaign, members in sorted(multi.items()):
        for v in members:
            truth.append(campaign)
            found.append(v.get("cluster_id") or "unclustered:" + v["account_id"])
    cluster_members: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for v in verdicts:
        if v.get("cluster_id"):
            cluster_members[v["cluster_id"]].append(v)
    attack_clusters = {
        c for c, members in cluster_members.items() if sum(m["verdict"] in FLAGGED for m in members) * 2 > len(members)
    }
    benign = [v for v in verdicts if labels[v["account_id"]].label == BENIGN]
    recalled = sum(sum(m["verdict"] in FLAGGED for m in members) * 2 > len(members) for members in multi.values())
    return {
        "campaigns": len(multi),
        "campaign_accounts": len(truth),
        "ari": float(adjusted_rand_score(truth, found)),
        "clustered_share": sum(not f.startswith("unclustered:") for f in found) / len(found),
        "campaign_recall": recalled / len(multi),
        "clusters": len(cluster_members),
        "attack_clusters": len(attack_clusters),
        "benign_in_attack_cluster": sum(v.get("cluster_id") in attack_clusters for v in benign),
        "benign_in_attack_cluster_share": (
            sum(v.get("cluster_id") in attack_clusters for v in benign) / len(benign) if benign else None
        ),
        "benign_clustered": sum(bool(v.get("cluster_id")) for v in benign),
    }
