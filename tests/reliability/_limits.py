"""Limits a child process puts on itself before it runs hostile input or is crashed on purpose:
no core dumps, a capped address space (so a huge allocation fails instead of silently reserving
virtual memory), and its peak RSS."""

from __future__ import annotations

import resource

AS_MARGIN = 1 << 30  # address space a child may add while loading hostile files


def no_core():
    """No core file for a child that aborts on purpose (thousands of trials)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def cap_address_space(margin: int = AS_MARGIN):
    """Caps the address space at what the process has mapped plus ``margin``, so that a huge
    allocation fails (and aborts) instead of silently reserving virtual memory."""
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + margin, resource.RLIM_INFINITY))


def maxrss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
