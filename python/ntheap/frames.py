"""Which frames of an allocation stack are the allocator, and the frame that asked for memory.

Where allocation frames end
---------------------------
The frames nearest the allocation are the allocator itself (``ntdll!RtlpAllocateHeapInternal``,
``ucrtbase!_malloc_base``, ``operator new``). The frame a person wants to see is the first one
past them: the code that asked for memory. :data:`ALLOCATOR_FRAMES` lists the patterns that
mark a frame as allocator code. A pattern is matched, ignoring case, against a frame written
as ``module!symbol`` (offset removed) or, for a frame without a symbol, ``module+0xOFFSET``;
``*`` matches any run of characters and nothing else is special (so decorated names such as
``??2@YAPEAX_K@Z`` are written as they are). A pattern without ``!`` or ``+`` matches that
symbol in any module. Extend the list for your own allocator wrappers::

    ntheap.ALLOCATOR_FRAMES.append("myapp!CPool::Alloc*")

or pass ``allocator_frames=`` to a single call.

Classification works on structured frames (module, symbol, offset: ``StackTable.frames()``);
:func:`split_frame` turns a frame's text into those fields for callers that only have text.
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

#: Patterns of frames that belong to the allocator (see the module doc for the syntax).
ALLOCATOR_FRAMES: List[str] = [
    # ntdll: the NT heap's entry points and their internal and debug-heap variants.
    "ntdll!RtlAllocateHeap",
    "ntdll!RtlpAllocateHeap",
    "ntdll!RtlpAllocateHeapInternal",
    "ntdll!RtlDebugAllocateHeap",
    "ntdll!RtlpAllocateHeapRaiseException",
    "ntdll!RtlReAllocateHeap",
    "ntdll!RtlpReAllocateHeap",
    "ntdll!RtlpReAllocateHeapInternal",
    "ntdll!RtlDebugReAllocateHeap",
    "ntdll!RtlpAllocateUserBlock*",
    "ntdll!RtlpLowFragHeapAlloc*",
    # kernel32 / kernelbase wrappers.
    "kernel*!HeapAlloc",
    "kernel*!HeapReAlloc",
    "kernel*!LocalAlloc",
    "kernel*!LocalReAlloc",
    "kernel*!GlobalAlloc",
    "kernel*!GlobalReAlloc",
    # The C runtime, in ucrtbase, msvcrt*, or linked statically into any module.
    "malloc",
    "_malloc_base",
    "_malloc_dbg",
    "calloc",
    "_calloc_base",
    "_calloc_impl",
    "_calloc_dbg",
    "realloc",
    "_realloc_base",
    "_realloc_dbg",
    "_recalloc",
    "_recalloc_base",
    "_aligned_malloc",
    "_aligned_offset_malloc",
    "_aligned_realloc",
    "_heap_alloc",
    "_heap_alloc_dbg*",
    "_nh_malloc_dbg*",
    "heap_alloc_dbg_internal",
    # operator new / new[], undecorated and decorated (x64 and x86, plain and nothrow).
    "operator new",
    "operator new[]",
    "operator new(*",
    "operator new[](*",
    "??2@YAPEAX_K@Z",
    "??2@YAPAXI@Z",
    "??_U@YAPEAX_K@Z",
    "??_U@YAPAXI@Z",
    "??2@YAPEAX_KAEBUnothrow_t@std@@@Z",
    "??_U@YAPEAX_KAEBUnothrow_t@std@@@Z",
    # The C++ standard library's allocation helpers.
    "std::_Allocate*",
    "std::allocator<*>::allocate",
    # Frames without a symbol inside the system allocator modules.
    "ntdll+*",
    "kernelbase+*",
    "kernel32+*",
    "ucrtbase+*",
    "ucrtbased+*",
    "msvcrt*+*",
    "vcruntime*+*",
]

NO_STACK = ""
NO_STACK_LABEL = "(no stack)"
UNKNOWN_MODULE = "(jit or unknown)"

_OFFSET = re.compile(r"\+(?:0x)?[0-9a-f`]+$", re.IGNORECASE)
_ADDRESS = re.compile(r"(?:0x)?[0-9a-f`]+", re.IGNORECASE)
_EXTENSIONS = (".dll", ".exe", ".sys", ".drv", ".ocx")



def split_frame(text: str) -> Tuple[str, str]:
    """``(module, symbol)`` of one frame text, ``""`` for either part that is not known.

    Example:
        >>> split_frame("ucrtbase!_malloc_base+0x36")
        ('ucrtbase', '_malloc_base')
        >>> split_frame("leaky+0x1a40")
        ('leaky', '')
        >>> split_frame("0x00007ff6`12345678")
        ('', '')
    """
    t = text.strip()
    if "!" in t:
        module, symbol = t.split("!", 1)
        symbol = _OFFSET.sub("", symbol)
    else:
        module, symbol = _OFFSET.sub("", t), ""
        if _looks_like_address(module):
            return "", ""  # JIT code or memory that no module covers
    module = re.split(r"[\\/]", module)[-1]
    if module.lower().endswith(_EXTENSIONS):
        module = module[: module.rfind(".")]
    return module, symbol


def _looks_like_address(text: str) -> bool:
    low = text.lower()
    return bool(_ADDRESS.fullmatch(low)) and (low.startswith("0x") or "`" in low or len(low) >= 8)


def _pattern(p: str) -> str:
    if "!" not in p and "+" not in p:
        p = "*!" + p
    return ".*".join(re.escape(part) for part in p.split("*"))


class FrameClassifier:
    """Decides which frames are allocator code and labels stacks by their first other frame.

    Results are cached per frame text, so labelling many stacks that share frames is cheap.
    """

    def __init__(self, allocator_frames: Optional[Sequence[str]] = None) -> None:
        patterns = ALLOCATOR_FRAMES if allocator_frames is None else allocator_frames
        # One alternation: a frame is matched once, whatever the number of patterns.
        self._match = re.compile("|".join(f"(?:{_pattern(p)})" for p in patterns) or r"(?!)", re.IGNORECASE | re.DOTALL).fullmatch
        self._frames: Dict[str, bool] = {}
        self._stacks: Dict[str, Tuple[str, str]] = {}

    def is_allocator_frame(self, module: Optional[str], symbol: Optional[str], offset: int) -> bool:
        """Whether the frame ``module!symbol`` (or ``module+0xOFFSET`` without a symbol) matches an
        allocator pattern; a frame in no module never does. ``module`` is the debugger's module
        name (``ntdll``), as ``StackTable.frames()`` gives it."""
        if not module:
            return False
        probe = f"{module}!{symbol}" if symbol else f"{module}+{offset:#x}"
        hit = self._frames.get(probe)
        if hit is None:
            hit = self._match(probe) is not None
            self._frames[probe] = hit
        return hit

    def is_allocator(self, frame: str) -> bool:
        """Whether ``frame`` (one frame text) matches an allocator pattern."""
        module, symbol = split_frame(frame)
        if not module and not symbol:
            return False
        if symbol:
            return self.is_allocator_frame(module, symbol, 0)
        m = _OFFSET.search(frame.strip())
        return self._match(f"{module}{m.group(0) if m else '+'}") is not None

    def callers(self, module: np.ndarray, symbol: np.ndarray, offset: np.ndarray, text: np.ndarray,
                frame_index: np.ndarray, offsets: np.ndarray) -> Tuple[List[str], List[str]]:
        """Per stack of a stack table in CSR form (``offsets`` into ``frame_index``, which indexes
        the distinct frames ``module``, ``symbol``, ``offset``, ``text``): the text and module of
        its first frame that is not allocator code (the innermost frame when all are)."""
        distinct = [self.is_allocator_frame(m, s, int(o)) for m, s, o in zip(module, symbol, offset)]
        tops: List[str] = []
        mods: List[str] = []
        for i in range(len(offsets) - 1):
            idx = frame_index[int(offsets[i]):int(offsets[i + 1])]
            if not len(idx):
                tops.append(NO_STACK_LABEL)
                mods.append(NO_STACK_LABEL)
                continue
            chosen = next((int(j) for j in idx if not distinct[int(j)]), int(idx[0]))
            tops.append(str(text[chosen]))
            mods.append(str(module[chosen]) if module[chosen] else UNKNOWN_MODULE)
        return tops, mods

    def caller(self, stack_key: str) -> Tuple[str, str]:
        """``(frame text, module)`` of the first non-allocator frame of a stack key.

        A stack made only of allocator frames is labelled by its innermost frame.
        """
        hit = self._stacks.get(stack_key)
        if hit is None:
            frames = [f for f in stack_key.split("\n") if f.strip()] if stack_key else []
            if not frames:
                hit = (NO_STACK_LABEL, NO_STACK_LABEL)
            else:
                chosen = next((f for f in frames if not self.is_allocator(f)), frames[0])
                hit = (chosen.strip(), split_frame(chosen)[0] or UNKNOWN_MODULE)
            self._stacks[stack_key] = hit
        return hit

    def labels(self, stack_keys: Iterable[str]) -> Tuple[List[str], List[str]]:
        """Caller frame texts and modules of many stack keys."""
        pairs = [self.caller(k) for k in stack_keys]
        return [p[0] for p in pairs], [p[1] for p in pairs]


def top_frame(stack_key: str, allocator_frames: Optional[Sequence[str]] = None) -> str:
    """The first frame of a stack key that is not allocator code (``"(no stack)"`` for ``""``).

    Example:
        >>> top_frame("ntdll!RtlAllocateHeap+0x4f\\nucrtbase!_malloc_base+0x36\\nleaky!Session::Open+0x20")
        'leaky!Session::Open+0x20'
    """
    return FrameClassifier(allocator_frames).caller(stack_key)[0]


