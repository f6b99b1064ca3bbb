"""Leak analysis, one import away: the public names of the modules it is split into.

* :mod:`ntheap.frames`: which frames are the allocator, and the frame that asked for memory;
* :mod:`ntheap.allocations`: one dump's user allocations (the one block representation);
* :mod:`ntheap.keys`: grouping keys (stack, type, size, content);
* :mod:`ntheap.aggregate`: totals per key for one dump (top stacks, types, sizes, modules);
* :mod:`ntheap.timeline`: comparison over time (diff, growth, what grows).

This module only re-exports; nothing in the package imports it.
"""

from __future__ import annotations

from .aggregate import size_histogram, top_content, top_keys, top_modules, top_stacks, top_types
from .allocations import Allocations, DumpAllocations, DumpSkippedWarning, collect, rebuild_error
from .frames import ALLOCATOR_FRAMES, NO_STACK, NO_STACK_LABEL, UNKNOWN_MODULE, FrameClassifier, split_frame, top_frame
from .keys import KEY_COLUMNS, group
from .timeline import DIFF_COLUMNS, GROWING_COLUMNS, GROWTH_COLUMNS, diff, growing, growing_stacks, growth

#: The earlier name of :func:`ntheap.allocations.collect`.
allocations = collect

__all__ = [
    "ALLOCATOR_FRAMES", "Allocations", "DIFF_COLUMNS", "DumpAllocations", "DumpSkippedWarning", "FrameClassifier",
    "GROWING_COLUMNS", "GROWTH_COLUMNS", "KEY_COLUMNS", "NO_STACK", "NO_STACK_LABEL", "UNKNOWN_MODULE", "allocations",
    "collect", "diff", "group", "growing", "growing_stacks", "growth", "rebuild_error", "size_histogram", "split_frame",
    "top_content", "top_frame", "top_keys", "top_modules", "top_stacks", "top_types",
]
