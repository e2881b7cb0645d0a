"""glibc keeps a step's freed activations for the next step (vaekit.malloc)."""
import os
import platform
import subprocess
import sys

import pytest

STEPS = 5
SCRIPT = f"""
import ctypes, resource
from vaekit.malloc import keep_freed_memory
applied = keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.restype, libc.memset.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
SIZE = 12_800_000
# straight from glibc (torch's CPU allocator uses the same heap through posix_memalign), so no
# other allocation between the blocks changes whether the heap's top can be handed back
def step():  # 8 activations of 12.8 MB written, then all freed at the step's end, like a conv step's
    blocks = [libc.malloc(SIZE) for _ in range(8)]
    for b in blocks:
        libc.memset(b, 1, SIZE)
    for b in blocks:
        libc.free(b)
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range({STEPS}):
    step()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(keep: str):
    # glibc's own malloc as it comes: no preloaded allocator, no MALLOC_* tunables from outside
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD"))}
    env.update(VAEKIT_KEEP_FREED_MEMORY=keep, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's malloc settings")
def test_freed_activations_are_reused_without_page_faults():
    applied, kept = page_faults("1")
    not_applied, returned = page_faults("off")
    assert applied and not not_applied
    # without the setting the heap's top goes back to the kernel after every step and each of the
    # 8 x 12.8 MB is faulted in again (about 25,000 pages a step); with it, none (124,835 and 0 here)
    assert returned > STEPS * 10_000
    assert kept < returned / 20
