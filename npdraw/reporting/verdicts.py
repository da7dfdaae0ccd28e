"""Verdicts on the paper's claims (npdraw.reporting.claims) from committed runs, by one rule (method §14).

Every claim becomes comparisons of two groups of per-seed values, each with the direction the claim
predicts.  Their p-values (npdraw.reporting.statistics: Welch's t-test; with a single seed on a side, a
t-test on the measure's pooled spread with that spread's degrees of freedom; no test without one) are
adjusted together by Holm's step-down over the claim's comparisons, and the verdict reads the adjusted
values at the 5 % level:

- **holds**: every comparison the claim speaks of (scope 'most': more than half of them) significant in
  the predicted direction, none against it;
- **does not hold**: at least one comparison significant against the prediction (scope 'most': at least
  half of them);
- **cannot tell**: anything else, a comparison without a test included;
- **not run yet**: no comparison has values on both sides.

Each comparison keeps its groups (system or variant, point, seeds, mean, sd, the mean KL and the budget of
image updates of its runs), its test, its raw and its adjusted p and the direction seen, so that
`results/findings/verdicts.json` says everything a verdict rests on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from npdraw.reporting.claims import OneAgainst, Ordered, Panel
from npdraw.reporting.statistics import ALPHA, Test, holm, pooled_sd, t_test

HOLDS, FAILS, UNSURE, MISSING = "holds", "does not hold", "cannot tell", "not run yet"


@dataclass(frozen=True)
class Group:
    """The runs on one side of a comparison."""
    name: str                 # the variant (Table 2) or the system (Fig. 3)
    point: str                # the split the runs trained on
    seeds: tuple[int, ...]
    values: tuple[float, ...]
    kl: float | None = None   # mean KL of the runs' test ELBO, nats: near 0 means an unused latent
    budget: int | None = None  # training image updates of the runs (None: not recorded)
    flagged: tuple[int, ...] = ()   # seeds whose domain FID is below the real-image floor beyond its spread

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def sd(self) -> float | None:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else None

    def shown(self) -> str:
        spread = "" if self.sd is None else f" ± {self.sd:.2f}"
        return f"{self.name} {self.mean:.2f}{spread} ({len(self.values)} seed{'s' if len(self.values) > 1 else ''})"


@dataclass(frozen=True)
class Comparison:
    """Groups a and b of one measure; the claim predicts mean(a) - mean(b) has the sign `expect`."""
    measure: str
    a: Group
    b: Group
    expect: int
    test: Test
    p_holm: float | None = None

    @property
    def seen(self) -> int:
        """+1 / -1: a significantly higher / lower than b after Holm's correction; 0: not shown."""
        if self.p_holm is None or self.p_holm >= ALPHA:
            return 0
        return int(np.sign(self.a.mean - self.b.mean))

    def shown(self) -> str:
        if not self.test.done:
            test = f"no test: {self.test.why}"
        else:
            test = f"{self.test.name} p = {self.test.p:.3f}, Holm {self.p_holm:.3f}"
        return f"{self.a.shown()} vs {self.b.shown()} ({test})"

    def record(self) -> dict:
        out = {"measure": self.measure, "expect": "a higher" if self.expect > 0 else "a lower",
               "test": self.test.name, "t": self.test.t, "df": self.test.df, "p": self.test.p,
               "p_holm": self.p_holm, "seen": {1: "a higher", -1: "a lower", 0: "not shown"}[self.seen]}
        if not self.test.done:
            out["no_test"] = self.test.why
        for side in ("a", "b"):
            g = getattr(self, side)
            out[side] = {**asdict(g), "seeds": list(g.seeds), "values": list(g.values), "mean": g.mean, "sd": g.sd}
        return out


@dataclass(frozen=True)
class Verdict:
    key: str
    claim: str
    verdict: str
    comparisons: tuple[Comparison, ...] = ()
    scope: str = "all"
    link: str = ""
    label: str = ""            # which runs (budget, metric) the verdict is made on
    note: str = ""             # why a verdict is missing
    flags: tuple[str, ...] = field(default=())   # runs the metric card flags (below the real-image floor)

    @property
    def evidence(self) -> str:
        if not self.comparisons:
            return self.note
        wins = sum(c.seen == c.expect for c in self.comparisons)
        losses = sum(c.seen == -c.expect for c in self.comparisons)
        head = (f"{wins} of {len(self.comparisons)} comparisons significant as claimed, {losses} against "
                f"(Holm over {sum(c.test.done for c in self.comparisons)} tests). ")
        return head + "; ".join(c.shown() for c in self.comparisons)

    def record(self) -> dict:
        return {"key": self.key, "claim": self.claim, "verdict": self.verdict, "scope": self.scope,
                "runs": self.label, "flags": list(self.flags), "note": self.note,
                "comparisons": [c.record() for c in self.comparisons]}


def group(rows: pd.DataFrame, name: str, point: str, measure: str) -> Group | None:
    """The runs of `rows` (one per seed: seed, the measure, kl_nats, budget, below_floor) as a Group; None if
    none has a value.  Only a domain FID is flagged by the floor."""
    have = rows.dropna(subset=[measure]).sort_values("seed")
    if not len(have):
        return None
    budgets = have["budget"].dropna().unique() if "budget" in have else []
    below = have["below_floor"].fillna(False).astype(bool) if measure == "fid_domain" and "below_floor" in have \
        else pd.Series(False, index=have.index)
    return Group(name, point, tuple(int(s) for s in have["seed"]), tuple(float(v) for v in have[measure]),
                 float(have["kl_nats"].mean()) if "kl_nats" in have and have["kl_nats"].notna().any() else None,
                 int(budgets[0]) if len(budgets) == 1 else None, tuple(int(s) for s in have.loc[below, "seed"]))


def judge(key: str, claim: str, pairs: list[tuple[Group | None, Group | None, int]], measure: str,
          spread_groups: list[list[float]], scope: str = "all", link: str = "", label: str = "") -> Verdict:
    """The verdict on `claim` from its (a, b, expected sign of a - b) pairs (module docstring); a group with
    one seed is tested on the pooled spread of `spread_groups` (every group of the measure)."""
    present = [(a, b, e) for a, b, e in pairs if a is not None and b is not None]
    missing = len(pairs) - len(present)
    if not present:
        return Verdict(key, claim, MISSING, scope=scope, link=link, label=label, note="no comparison has runs on "
                       "both sides")
    spread = pooled_sd(spread_groups)
    tests = [Test("none", why=f"{g.name} {g.point} seed {', '.join(map(str, g.flagged))}: domain FID below the "
                              f"real-image floor by more than its spread, which the metric cannot rank")
             if (g := a if a.flagged else b if b.flagged else None) is not None else t_test(a.values, b.values, spread)
             for a, b, _ in present]
    adjusted = holm([t.p for t in tests])
    comps = tuple(Comparison(measure, a, b, e, t, p) for (a, b, e), t, p in zip(present, tests, adjusted))
    wins = sum(c.seen == c.expect for c in comps)
    losses = sum(c.seen == -c.expect for c in comps)
    n = len(pairs)
    if scope == "most":
        verdict = HOLDS if wins > n / 2 and not losses else FAILS if losses >= n / 2 else UNSURE
    else:
        verdict = HOLDS if wins == n else FAILS if losses else UNSURE
    note = f"{missing} of {n} comparisons have no runs yet" if missing else ""
    flags = tuple(sorted({f"{g.name} {g.point} seed {s}" for c in comps for g in (c.a, c.b) for s in g.flagged}))
    return Verdict(key, claim, verdict, comps, scope, link, label, note, flags)


def _groups_of(rows: pd.DataFrame, by: str, measure: str, point_of) -> dict[str, Group | None]:
    return {name: group(runs, name, point_of(runs), measure) for name, runs in rows.groupby(by)}


def table2_verdict(claim: Ordered | OneAgainst, rows: pd.DataFrame, link: str, label: str) -> Verdict:
    """A Table 2 claim from its runs (one row per run: variant, seed, the measures, kl_nats, budget)."""
    m = claim.measure
    groups = _groups_of(rows, "variant", m, lambda r: "full") if len(rows) else {}
    if isinstance(claim, Ordered):
        pairs = [(groups.get(later), groups.get(earlier), claim.direction)
                 for earlier, later in zip(claim.variants, claim.variants[1:])]
    else:
        pairs = [(groups.get(claim.variant), groups.get(other), claim.direction) for other in claim.others]
    spread = [list(g.values) for g in groups.values() if g is not None]
    return judge(claim.key, claim.text, pairs, m, spread, link=link, label=label)


def panel_verdict(claim: Panel, df: pd.DataFrame | None, against: tuple[str, ...] | None, link: str,
                  label: str) -> Verdict:
    """NP-DRAW against each model of `df` (one row per run: model, variant, proportion, split, seed, the
    measure, kl_nats, budget) at the proportions the claim speaks of; `against` the models compared
    (None: every other model)."""
    text = claim.text + ("" if against is None else f", against {' and '.join(against)} alone")
    key = claim.key + ("" if against is None else "_no_autoregressive")
    if df is None or not len(df):
        return Verdict(key, text, MISSING, scope=claim.scope, link=link, label=label, note="no run committed")
    m = claim.measure
    props = claim.proportions(df["proportion"].unique())
    others = [x for x in sorted(set(df["model"]) - {"NP-DRAW"}) if against is None or x in against]
    pairs, spread = [], []
    for p in props:
        at = df[df["proportion"] == p]
        groups = _groups_of(at, "model", m, lambda r: str(r["split"].iloc[0]))
        spread += [list(g.values) for g in groups.values() if g is not None]
        pairs += [(groups.get("NP-DRAW"), groups.get(model), claim.direction) for model in others]
    scope = "most" if claim.scope == "most" else "all"
    return judge(key, text, pairs, m, spread, scope, link, label)
