"""glibc keeps a step's freed activations for the next step (vaekit.malloc)."""
import os
import platform
import subprocess
import sys
from typing import Optional

import pytest

STEPS = 5
CLI = "from vaekit.malloc import keep_freed_memory; keep_freed_memory()"  # what the vaekit command's main does
TRAIN = ("import sys, vaekit; vaekit.train('digits', out=sys.argv[1], epochs=1, hidden=[16], batch_size=512, "
         "overwrite=True{keyword})")
# One process per case, forked from one that has imported vaekit and torch (torch._dynamo too: the optimizer
# imports it), instead of a fresh interpreter each: the imports took 4 of each case's 4.5 s of CPU. A fork starts
# with its parent's malloc as it comes (the parent only imported); each case sets its own environment.
FORKED = """
import os, sys
import torch._dynamo, vaekit.app.api
for keep, setup in CASES:
    sys.stdout.flush()
    child = os.fork()
    if child == 0:
        try:
            if keep is not None:
                os.environ["VAEKIT_KEEP_FREED_MEMORY"] = keep
            exec(SCRIPT.replace("{setup}", setup), {})
            sys.stdout.flush()
        except BaseException:
            import traceback; traceback.print_exc(); sys.stderr.flush(); os._exit(1)
        os._exit(0)
    _, status = os.waitpid(child, 0)
    if status:
        sys.exit(f"case {keep!r} {setup!r} failed: {status}")
sys.stdout.flush()
os._exit(0)  # no teardown of what the imports built: a second of CPU
"""
SCRIPT = f"""
import ctypes, resource
from vaekit import malloc
{{setup}}
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
print(malloc.applied(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def clean_env(**extra) -> dict:
    """glibc's own malloc as it comes: no preloaded allocator, no MALLOC_* tunables from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD"))}
    env.pop("VAEKIT_KEEP_FREED_MEMORY", None)
    return dict(env, OMP_NUM_THREADS="1", **extra)


def page_faults(keep: Optional[str], setup: str = CLI, out: str = ""):
    env = clean_env(**({"VAEKIT_KEEP_FREED_MEMORY": keep} if keep is not None else {}))
    done = subprocess.run([sys.executable, "-c", SCRIPT.replace("{setup}", setup), out], env=env,
                          capture_output=True, text=True, check=True)
    applied, faults = done.stdout.split()[-2:]
    return applied == "True", int(faults)


def page_faults_forked(cases, out: str) -> list:
    """(applied, faults) per (VAEKIT_KEEP_FREED_MEMORY, setup) case, each in its own process forked from one
    parent (:data:`FORKED`)."""
    code = f"CASES = {list(cases)!r}\nSCRIPT = {SCRIPT!r}\n{FORKED}"
    done = subprocess.run([sys.executable, "-c", code, out], env=clean_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    results = [line.split() for line in done.stdout.splitlines() if line.startswith(("True ", "False "))]
    assert len(results) == len(cases), done.stdout + done.stderr
    return [(applied == "True", int(faults)) for applied, faults in results]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's malloc settings")
def test_freed_activations_are_reused_without_page_faults():
    applied, kept = page_faults("1")
    not_applied, returned = page_faults("off")
    assert applied and not not_applied
    # without the setting the heap's top goes back to the kernel after every step and each of the
    # 8 x 12.8 MB is faulted in again (about 25,000 pages a step); with it, none (124,835 and 0 here)
    assert returned > STEPS * 10_000
    assert kept < returned / 20


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's malloc settings")
def test_the_library_keeps_freed_memory_only_when_asked(tmp_path):
    out = str(tmp_path / "run")
    unasked, refused, *asked = page_faults_forked([
        (None, TRAIN.format(keyword="")), ("1", TRAIN.format(keyword=", keep_freed_memory=False")),
        (None, TRAIN.format(keyword=", keep_freed_memory=True")), ("1", TRAIN.format(keyword=""))], out)
    assert unasked[0] is False and refused[0] is False  # vaekit.train left the caller's malloc as it was
    assert unasked[1] > STEPS * 10_000  # each step's blocks faulted in again: glibc's own thresholds
    for case in asked:
        assert case[0] is True and case[1] < unasked[1] / 20


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's malloc settings")
def test_a_run_that_recomputes_activations_hands_freed_memory_back():
    """--checkpoint-activations trades speed for memory: the trainer calls malloc.return_freed_memory, after which
    each step's freed blocks go back to the kernel (and are faulted in again), even after the vaekit command's
    keep_freed_memory; and keep_freed_memory no longer applies."""
    lean = CLI + "; malloc.return_freed_memory(); malloc.keep_freed_memory(True)"
    applied, returned = page_faults("1", setup=lean)
    assert not applied and returned > STEPS * 10_000
