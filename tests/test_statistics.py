"""The verdict rule (method §14): Welch's t-test, the pooled t-test of a single seed with the right degrees of
freedom, Holm's correction, and the verdicts they give."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from npdraw.reporting.claims import FIG3_CLAIMS, TABLE2_CLAIMS, Ordered
from npdraw.reporting.statistics import Spread, holm, pooled_sd, t_test
from npdraw.reporting.verdicts import FAILS, HOLDS, MISSING, UNSURE, Group, judge, panel_verdict, table2_verdict


def test_holm_matches_the_step_down_definition():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4x, 3x, 2x, 1x, made monotone
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, None, 0.01]) == pytest.approx([0.5, None, 0.02])
    assert holm([0.9, 0.8]) == [1.0, 1.0]   # 0.8 x 2 capped at 1, and 0.9 x 1 made monotone with it


def test_welch_with_two_or_more_a_side():
    a, b = [1.0, 2.0, 3.0], [5.0, 6.0, 8.0]
    t = t_test(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert t.name == "Welch" and t.p == pytest.approx(ref.pvalue) and t.df == pytest.approx(ref.df)


def test_a_single_seed_uses_the_pooled_spread_with_its_degrees_of_freedom():
    """Two 2-seed groups pool 2 degrees of freedom: the critical t is 4.30, not the normal's 1.96."""
    spread = pooled_sd([[10.0, 12.0], [20.0, 22.0]])
    assert spread == Spread(math.sqrt(2.0), 2)
    diff = 2.5 * spread.sd * math.sqrt(1 / 1 + 1 / 2)   # t = 2.5: past 2 (the old rule), short of 4.30
    t = t_test([10.0 + diff], [9.0, 11.0], spread)
    assert t.name == "pooled t" and t.df == 2 and t.t == pytest.approx(2.5)
    assert t.p == pytest.approx(2 * stats.t.sf(2.5, 2)) and t.p > 0.05
    assert not t_test([1.0], [2.0], None).done and not t_test([1.0], [2.0]).done


def group(name, values, point="full"):
    return Group(name, point, tuple(range(len(values))), tuple(values))


def test_a_verdict_against_the_claim_needs_a_holm_adjusted_p_below_five_percent():
    """Four comparisons against the claim, each with a raw p between 0.0125 and 0.05: every one would pass at
    5 % alone, none after Holm (the smallest times four is above 0.05): cannot tell, not "does not hold"."""
    b = group("b", [3.0, 3.9, 3.5])
    against = [group("a", [3 + d, 3.6 + d, 2.7 + d]) for d in (1.5, 1.6, 1.7, 1.8)]
    raw = [t_test(a.values, b.values).p for a in against]
    assert all(0.0125 < p < 0.05 for p in raw)
    v = judge("k", "claim", [(a, b, -1) for a in against], "fid_domain", [])
    assert v.verdict == UNSURE and all(c.seen == 0 for c in v.comparisons)
    strong = group("a", [9.0, 9.1, 9.05])
    v = judge("k", "claim", [(a, b, -1) for a in against[:3]] + [(strong, b, -1)], "fid_domain", [])
    assert v.verdict == FAILS and [c.seen for c in v.comparisons] == [0, 0, 0, 1]
    far = (group("a", [1.0, 1.1, 0.9]), group("b", [9.0, 9.2, 8.8]), -1)
    assert judge("k", "claim", [far] * 4, "fid_domain", []).verdict == HOLDS


def test_single_seed_groups_alone_give_no_verdict_and_a_missing_side_says_not_run():
    v = judge("k", "claim", [(group("a", [1.0]), group("b", [50.0]), -1)], "nll", [[1.0], [50.0]])
    assert v.verdict == UNSURE and not v.comparisons[0].test.done
    assert judge("k", "claim", [(None, group("b", [1.0]), -1)], "nll", []).verdict == MISSING


def test_a_flagged_group_is_not_tested():
    flagged = Group("PixelVAE", "x", (0, 1, 2), (1.0, 1.1, 0.9), flagged=(1,))
    v = judge("k", "claim", [(group("NP-DRAW", [9.0, 9.1, 9.2]), flagged, -1)], "fid_domain", [])
    assert v.verdict == UNSURE and "floor" in v.comparisons[0].test.why and v.flags == ("PixelVAE x seed 1",)


def table2_rows(values: dict[str, list[float]], measure="nll") -> pd.DataFrame:
    return pd.DataFrame([{"variant": v, "seed": s, measure: x, "kl_nats": 30.0, "budget": 60000}
                         for v, xs in values.items() for s, x in enumerate(xs)])


def test_table2_claims_read_their_runs():
    claim = next(c for c in TABLE2_CLAIMS if c.key == "nll_vs_lambda")
    assert "107.72, 129.73, 134.54" in claim.text   # the paper's numbers, stated once in claims.PAPER_TABLE2
    rows = table2_rows({"lam1": [100.0, 101.0, 99.0], "base": [130.0, 131.0, 129.5], "lam100": [150.0, 151.0, 149.0]})
    v = table2_verdict(claim, rows, "", "current")
    assert v.verdict == HOLDS and v.comparisons[0].a.budget == 60000 and v.comparisons[0].a.kl == 30.0
    record = v.record()
    assert record["comparisons"][0]["a"]["name"] == "base" and record["comparisons"][0]["p_holm"] < 0.05
    worse = table2_rows({"lam1": [150.0, 151.0, 149.0], "base": [130.0, 131.0, 129.5], "lam100": [150.0, 151, 149]})
    assert table2_verdict(claim, worse, "", "current").verdict == FAILS
    assert table2_verdict(Ordered("x", "w", "nll", ("lam1", "M10"), "lambda", 1), rows, "", "").verdict == MISSING


def test_a_panel_verdict_against_every_baseline_or_the_non_autoregressive_ones():
    claim = next(c for c in FIG3_CLAIMS if c.kind == "character")
    rows = [{"model": m, "variant": v, "proportion": p, "split": f"character-{p}", "seed": s,
             "fid_domain": base + 0.1 * s, "kl_nats": 10.0, "budget": 60000}
            for m, v, base in (("NP-DRAW", "base", 5.0), ("VAE", "vae", 9.0), ("PixelVAE", "pixelvae", 1.0))
            for p in (0.1, 0.5) for s in range(3)]
    df = pd.DataFrame(rows)
    assert panel_verdict(claim, df, None, "", "").verdict == FAILS
    v = panel_verdict(claim, df, ("VAE",), "", "")
    assert v.verdict == HOLDS and len(v.comparisons) == 2 and v.key.endswith("_no_autoregressive")
    assert panel_verdict(claim, None, None, "", "").verdict == MISSING
    assert np.isclose(v.comparisons[0].a.mean, 5.1)
