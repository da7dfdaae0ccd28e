"""C kernels shipped as source with the package, compiled on first use and called through ctypes.

A few hot operations of the training step are long chains of element-wise PyTorch operations over
large tensors, each a pass through memory, where one C loop keeps its working set in L1 (for now the
running maxima of drawing, npdraw/parts/canvas_kernels.c).  A C file needs no PyTorch headers, so it
compiles in a fraction of a second with the system's compiler (`$CC`, else `cc` / `gcc`), into
`$NPDRAW_KERNELS` (default: `~/.cache/npdraw/kernels`), under a name hashed from the source, the
compiler, the flags and this CPU's instruction sets, so that a changed file or another machine type
never loads a stale build.  Several processes compiling at once each write their own file and rename
it into place.

Without a compiler, or with `NPDRAW_NATIVE=0`, `library` returns None and the callers use their
PyTorch formulation, which gives the same values and gradients to rounding (tests/test_kernels.py
checks both); `status()` says which (every metrics file records it, npdraw.runtime.provenance).
A kernel splits its batch over torch.get_num_threads() OpenMP threads, in PyTorch's own OpenMP runtime
(see FLAGS): a thread pool of its own would compete with PyTorch's threads, which spin for a while
after each of PyTorch's parallel regions waiting for more work (measured in the training step: no
gain from a second thread of a Python thread pool; the kernels' full speed on PyTorch's).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import time
from functools import cache
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

# -ffp-contract=off: no fused multiply-adds, so that a product is rounded as PyTorch's is before it is
# compared; -march=native: this CPU's vector width (the cache key holds its instruction sets);
# -fopenmp: the library needs libgomp.so.1, and the dynamic loader hands it the one PyTorch has loaded
# (one soname), so the kernels run on PyTorch's own OpenMP threads.
FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fopenmp", "-shared", "-fPIC", "-std=c11")
_I64 = ctypes.c_int64
_PTR = ctypes.c_void_p


def cache_dir() -> Path:
    env = os.environ.get("NPDRAW_KERNELS")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "npdraw" / "kernels"


def enabled() -> bool:
    """False when the environment switches the kernels off (NPDRAW_NATIVE=0)."""
    return os.environ.get("NPDRAW_NATIVE", "1") != "0"


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc"):
        path = shutil.which(name) if name else None
        if path:
            return path
    return None


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


_failed: dict[str, str] = {}   # source -> why its library is None
_warned: set[str] = set()


@cache
def _load(source: str) -> ctypes.CDLL | None:
    """The compiled library of package file `source` ('npdraw.parts/canvas_kernels.c'), or None (the
    reason in _failed)."""
    package, name = source.split("/")
    text = resources.files(package).joinpath(name).read_bytes()
    cc = _compiler()
    if cc is None:
        _failed[source] = "no C compiler ($CC, cc or gcc) on PATH"
        return None
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    key = hashlib.sha256(b"\0".join([text, version.encode(), " ".join(FLAGS).encode(),
                                     _cpu_flags().encode()])).hexdigest()[:16]
    target = cache_dir() / f"{Path(name).stem}-{key}.so"
    if not target.exists():
        start = time.perf_counter()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so.tmp", dir=target.parent)
            os.close(fd)
            with tempfile.TemporaryDirectory() as src_dir:
                src = Path(src_dir) / name
                src.write_bytes(text)
                run = subprocess.run([cc, *FLAGS, str(src), "-o", tmp], capture_output=True, text=True)
            if run.returncode:
                os.unlink(tmp)
                _failed[source] = f"{cc} failed on {name}: {run.stderr.strip()[-500:]}"
                return None
            os.replace(tmp, target)
        except OSError as err:
            _failed[source] = f"could not build {target}: {err}"
            return None
        log.info("compiled %s -> %s (%.1f s)", name, target, time.perf_counter() - start)
    try:
        return ctypes.CDLL(str(target))
    except OSError as err:
        _failed[source] = f"could not load {target}: {err}"
        return None


def library(source: str) -> ctypes.CDLL | None:
    """The compiled C library of a package file ('npdraw.parts/canvas_kernels.c'), built on first use;
    None when switched off, when no compiler is present or when it does not build (then the caller
    uses its PyTorch formulation; a warning says why, once)."""
    if not enabled():
        return None
    lib = _load(source)
    if lib is None and source not in _warned:
        _warned.add(source)
        log.warning("C kernels of %s not used, PyTorch operations instead (slower): %s", source,
                    _failed[source])
    return lib


def status(source: str) -> dict:
    """For provenance: whether the kernels of `source` are used, and if not why."""
    if not enabled():
        return {"native": False, "why": "NPDRAW_NATIVE=0"}
    if library(source) is None:
        return {"native": False, "why": _failed[source]}
    return {"native": True}


def sources() -> list[str]:
    """The package's C sources, as library() names them ('npdraw.parts/canvas_kernels.c')."""
    root = resources.files("npdraw")
    return sorted(f"npdraw.{d.name}/{f.name}" for d in root.iterdir() if d.is_dir()
                  for f in d.iterdir() if f.name.endswith(".c"))


def source_path(source: str) -> str:
    """The repository path of a source as library() names it: 'npdraw/parts/canvas_kernels.c'."""
    package, name = source.split("/")
    return f"{package.replace('.', '/')}/{name}"


def report() -> dict[str, dict]:
    """status() of every C source of the package (builds them if needed): what a metrics file records."""
    return {source: status(source) for source in sources()}


def call(fn, *args) -> None:
    """Call C function fn(*args, threads) with tensors passed as their data pointers, None as NULL and
    ints as int64; threads = torch.get_num_threads(), the size of the OpenMP team it splits its batch
    over."""
    import torch  # here, so that the rest of this module (provenance) imports without PyTorch

    ptrs = [_PTR(a.data_ptr()) if isinstance(a, torch.Tensor) else (_PTR(None) if a is None else _I64(a))
            for a in args]
    fn(*ptrs, ctypes.c_int(torch.get_num_threads()))
