"""file_modes_enforced(): make chmod bind the test process even when it runs as root, as CI does.

Root reads and writes whatever a file's mode says, through two capabilities (CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH). Linux keeps capabilities per thread, and a thread may lower its effective ones and
raise them again while they stay permitted: inside the block, this thread is refused as any user would be.
Import it as `from permissions import file_modes_enforced` (tests/ is on the path).
"""

from __future__ import annotations

import contextlib
import ctypes
import os

CAPABILITY_VERSION_3 = 0x20080522  # <linux/capability.h>: 64-bit sets, as two 32-bit words
DAC_CAPABILITIES = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH (both in the first word)


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Sets(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _capabilities(call: str, header: _Header, sets) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, call)(ctypes.byref(header), sets) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{call}: {os.strerror(error)}")


@contextlib.contextmanager
def file_modes_enforced():
    """Within the block, this thread cannot read or write past a file's mode bits, even as root."""
    if os.geteuid() != 0:
        yield  # file modes already bind an ordinary user
        return
    header, sets = _Header(CAPABILITY_VERSION_3, 0), (_Sets * 2)()
    _capabilities("capget", header, sets)
    saved = sets[0].effective
    sets[0].effective &= ~DAC_CAPABILITIES
    _capabilities("capset", header, sets)
    try:
        yield
    finally:
        sets[0].effective = saved
        _capabilities("capset", header, sets)
