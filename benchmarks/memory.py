"""Peak resident memory of a piece of CPU code, measured inside this process.

PyTorch keeps no allocator statistics on the CPU, so we read the kernel's
high-water mark of resident memory (VmHWM), reset before each measurement
through /proc/self/clear_refs. While measuring, glibc serves every block over
64 KiB with its own mmap and unmaps it on free, so resident memory follows the
bytes actually live rather than what the heap keeps around; timed runs use a
fixed policy close to glibc's default (`configure_allocator`). Mapping every
block costs page faults, which slow long runs badly; `exact=False` measures
under the timed policy instead, after returning the heap's free pages, and
may count some heap slack on top of the live bytes.
"""

import ctypes
import gc
import re

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _status_kib(field):
    with open("/proc/self/status") as status:
        return int(re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.M).group(1))


_LIBC = ctypes.CDLL("libc.so.6")


def _mmap_blocks_over(threshold_bytes):
    _LIBC.mallopt(_M_MMAP_THRESHOLD, threshold_bytes)
    _LIBC.mallopt(_M_TRIM_THRESHOLD, threshold_bytes)


def configure_allocator():
    """For timed runs: blocks over 64 MiB come from mmap, smaller ones are
    reused from the heap, as glibc's default (adaptive, up to 32 MiB) does."""
    _mmap_blocks_over(64 * 2**20)


def peak_extra_bytes(function, exact=True):
    """Run `function()` and return (its result, peak RSS above the start in bytes)."""
    gc.collect()
    if exact:
        _mmap_blocks_over(64 * 2**10)
    _LIBC.malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # resets VmHWM to the current RSS
        before = _status_kib("VmRSS")
        result = function()
        peak = _status_kib("VmHWM")
    finally:
        configure_allocator()
    return result, (peak - before) * 1024
