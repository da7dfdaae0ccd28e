"""The paper's claims the findings judge, as data: each claim's words are built from the paper's own
numbers, stated once here (its Table 2 and its Fig. 3's panels).

A claim names the runs it compares and the direction it predicts; npdraw.reporting.verdicts turns the
committed runs into comparisons and a verdict.  Three shapes:

- `Ordered`: a measure rises (or falls) along a row of Table 2's variants (each neighbouring pair one
  comparison);
- `OneAgainst`: one variant is worse than each of several others;
- `Panel`: NP-DRAW better (lower) than every baseline at each proportion of one low-data curve (paper
  Fig. 3), or worse where the paper says so, `scope` saying which of those comparisons the claim speaks of.
"""

from __future__ import annotations

from dataclasses import dataclass

# The paper's Table 2 (its data: the IWAE 28x28 Omniglot; its FID: Inception's), by variant: K, M, lambda
# and the measures it reports.
PAPER_COLUMNS = ("K", "M", "lambda", "psnr", "fid", "nll", "bce", "kl")
PAPER_TABLE2 = {
    "base": (5, 50, 50, 17.71, 5.53, 129.73, 89.95, 54.80),
    "K6": (6, 50, 50, 16.38, 12.86, 118.37, 108.81, 25.62),
    "K8": (8, 50, 50, 15.60, 22.00, 132.98, 130.39, 21.34),
    "M10": (5, 10, 50, 15.77, 15.02, 127.22, 115.53, 27.37),
    "M200": (5, 200, 50, 19.50, 6.08, 115.53, 89.94, 38.41),
    "lam0": (5, 50, 0, 17.71, 35.27, 110.64, 112.07, 25.67),
    "lam1": (5, 50, 1, 17.71, 5.58, 107.72, 92.27, 34.40),
    "lam100": (5, 50, 100, 17.71, 5.74, 134.54, 92.23, 57.96),
}
# How a measure of the runs (their metrics' names) is called, and which paper column it matches.
MEASURES = {"psnr_db": ("parse PSNR", "psnr", "dB"), "fid_domain": ("domain FID", "fid", ""),
            "nll": ("NLL", "nll", "nats")}


def paper(variant: str, column: str) -> float:
    """The paper's Table 2 value of `column` (PAPER_COLUMNS) for `variant`."""
    return PAPER_TABLE2[variant][PAPER_COLUMNS.index(column)]


@dataclass(frozen=True)
class Ordered:
    """`measure` rises (`direction` +1) or falls (-1) along `variants`, which differ in `axis` (K, M, lambda)."""
    key: str
    words: str
    measure: str
    variants: tuple[str, ...]
    axis: str
    direction: int

    @property
    def text(self) -> str:
        name, column, unit = MEASURES[self.measure]
        values = ", ".join(f"{paper(v, column):.2f}" for v in self.variants)
        axis = ", ".join(f"{paper(v, self.axis):g}" for v in self.variants)
        unit = f" {unit}" if unit else ""
        return f"{self.words} (the paper's {name.split()[-1]}: {values}{unit} at {self.axis} = {axis})"


@dataclass(frozen=True)
class OneAgainst:
    """`variant`'s `measure` is higher (`direction` +1) or lower (-1) than each of `others`'."""
    key: str
    words: str
    measure: str
    variant: str
    others: tuple[str, ...]
    direction: int

    @property
    def text(self) -> str:
        name, column, _ = MEASURES[self.measure]
        others = ", ".join(f"{paper(v, column):.2f}" for v in self.others)
        lambdas = ", ".join(f"{paper(v, 'lambda'):g}" for v in self.others)
        return (f"{self.words} (the paper's {name.split()[-1]}: {paper(self.variant, column):.2f} at lambda = "
                f"{paper(self.variant, 'lambda'):g}, {others} at lambda = {lambdas})")


@dataclass(frozen=True)
class Panel:
    """NP-DRAW's `measure` lower (`direction` -1; +1: higher) than each baseline's at the proportions of one
    low-data curve: `scope` 'all' (every comparison), 'most' (more than half, none the other way),
    'above_one' (all but the smallest proportion's) or 'smallest' (the smallest proportion's alone)."""
    key: str
    dataset: str
    kind: str
    words: str
    scope: str
    measure: str = "fid_domain"
    direction: int = -1

    def proportions(self, present) -> list[float]:
        """The proportions of `present` the claim speaks of, in increasing order."""
        props = sorted(present)
        return props[1:] if self.scope == "above_one" else props[:1] if self.scope == "smallest" else props

    @property
    def text(self) -> str:
        return f"Fig. 3, {self.words}"


TABLE2_CLAIMS = (
    Ordered("psnr_vs_M", "Parse PSNR rises as the bank grows", "psnr_db", ("M10", "base", "M200"), "M", +1),
    Ordered("psnr_vs_K", "Parse PSNR falls as the parts grow", "psnr_db", ("base", "K6", "K8"), "K", -1),
    Ordered("fid_vs_K", "Sample quality falls as the parts grow", "fid_domain", ("base", "K6", "K8"), "K", +1),
    Ordered("nll_vs_lambda", "A larger lambda costs likelihood", "nll", ("lam1", "base", "lam100"), "lambda", +1),
    OneAgainst("collapse_without_reg", "Without the parse regulariser sample quality collapses", "fid_domain",
               "lam0", ("lam1", "base", "lam100"), +1),
)

FIG3_CLAIMS = (
    Panel("fig3_digit", "mnist", "digit", "by digit: similar to the others at 10-20 % of the data, better from 30 % on",
          "all"),
    Panel("fig3_sample", "mnist", "sample", "by sample: better at most proportions", "most"),
    Panel("fig3_character", "omniglot", "character", "by character: better at every proportion", "all"),
    Panel("fig3_alphabet", "omniglot", "alphabet", "by alphabet: better, except with one alphabet (where the part "
          "bank may lack expressiveness)", "above_one"),
    Panel("fig3_one_alphabet", "omniglot", "alphabet", "by alphabet, the exception: worse with one alphabet (the "
          "part bank of so few characters may lack expressiveness)", "smallest", direction=+1),
)
