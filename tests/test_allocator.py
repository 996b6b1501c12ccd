"""ML.allocator: after ``keep_freed_memory`` a large block comes from (and goes back to) the heap, not mmap."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import ctypes, json
from ML.allocator import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def mmapped_by(size):
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(size)
    grew = libc.mallinfo2().hblkhd - before
    libc.free(block)
    return grew

size = 20 * 2**20
plain = mmapped_by(size)
tuned = keep_freed_memory()
print(json.dumps({"plain": plain, "tuned": mmapped_by(size), "info": tuned, "again": keep_freed_memory()}))
"""


def test_keep_freed_memory_serves_large_blocks_from_the_heap() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    assert result["plain"] >= 20 * 2**20  # glibc's default: a 20 MB block is its own mmap
    assert result["tuned"] == 0           # tuned: the heap serves it, and keeps it when freed
    assert result["info"] == {"tuned": True, "mmap_threshold": 32 * 2**20, "trim_threshold": 2**30}
    assert result["again"] == result["info"]
