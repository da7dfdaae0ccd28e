"""npdraw.compute.memory: memory a step frees is reused by the next without page faults."""

import subprocess
import sys

import pytest

from npdraw.compute.memory import keep_freed_memory

# A training step in small: fill tensors of 48, 8 and 40 MiB (above glibc's mmap threshold, as a batch's
# activations are), then free them all; print the minor page faults of the tenth such step
# (glibc settles on a layout of the freed blocks within a few steps).
LAST_STEP_FAULTS = """
import resource, sys, torch
if sys.argv[1] == "keep":
    from npdraw.compute.memory import keep_freed_memory
    assert keep_freed_memory()
for step in range(10):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    held = [torch.empty(mib * 2 ** 18).fill_(1.0) for mib in (48, 8, 40)]
    del held
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGES = 96 * 2 ** 20 // 4096   # of one step's tensors


def last_step_faults(policy: str) -> int:
    out = subprocess.run([sys.executable, "-c", LAST_STEP_FAULTS, policy], capture_output=True, text=True,
                         check=True)
    return int(out.stdout)


@pytest.mark.skipif(not keep_freed_memory(), reason="glibc's mallopt only (Linux)")
def test_freed_memory_is_reused_without_page_faults():
    assert last_step_faults("default") > PAGES // 2     # glibc unmaps each freed block and maps it again ...
    assert last_step_faults("keep") < PAGES // 20       # ... and, kept, hands the same memory out again
