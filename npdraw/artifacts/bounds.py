"""Numbers a person gives (counts, seeds, ports, sample sizes), each with its range declared once and checked
the same way by argparse, the Python API and the editor's HTTP handlers: a whole number (not a bool, not a
fraction, not text), inside the range, or one message naming the parameter, the value and the range.
"""

from __future__ import annotations

import argparse
import numbers
from dataclasses import dataclass

from npdraw.artifacts.errors import DataError


@dataclass(frozen=True)
class Bound:
    """A whole-number parameter: `name` as the person typed it, its inclusive range, what it counts."""
    name: str
    low: int
    high: int
    what: str

    def check(self, value) -> int:
        """`value` as an int, or a DataError naming the parameter, the value and the range."""
        whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if isinstance(value, float) and value.is_integer():
            whole, value = True, int(value)
        if not whole:
            raise DataError(f"{self.name} {value!r}: expected a whole number from {self.low:,} to {self.high:,} "
                            f"({self.what})")
        value = int(value)
        if not self.low <= value <= self.high:
            raise DataError(f"{self.name} {value:,}: out of range; expected {self.low:,} to {self.high:,} "
                            f"({self.what})")
        return value

    def parse(self, text: str) -> int:
        """A command-line string, checked (argparse's `type`: its error becomes the usage message)."""
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number from {self.low:,} to {self.high:,} "
                                             f"({self.what})") from None
        try:
            return self.check(value)
        except DataError as err:
            raise argparse.ArgumentTypeError(str(err)) from None


SEED_MAX = 2**31 - 1   # seeds feed torch.Generator.manual_seed and numpy's SeedSequence, plus a rank
SEED = Bound("seed", 0, SEED_MAX, "a random seed")
PORT = Bound("port", 1, 65535, "a TCP port")
