/* A stand-in for ntdll.dll, written for the ntheap tests (not Microsoft code).

   It holds the two heap-key globals a symbol-aware heap walker reads through
   ntdll's PDB, under their real names and with the layout of
   docs/windows-heap-layouts.md (section 10 intro, section 9.6):

     RtlpLFHKey          NT-heap LFH key, one pointer-sized value;
     RtlpHpHeapGlobals   segment-heap keys (_RTLP_HP_HEAP_GLOBALS): HeapKey
                         (pointer-sized) at +0, LfhKey at +8 (x64) / +4 (x86),
                         sizeof 0x80 (the x64 size; the x86 size is not
                         documented, the stand-in uses 0x80 too).

   Both are initialised to non-zero constants, so they sit in .data with file
   bytes; RtlpStandInAllocCount is zero-initialised and lands in .bss (merged
   into .data by the linker, past its raw data).  The exported functions do
   trivial work that reads the globals, so the linker keeps them and the code
   has real references to them (absolute ones on x86: base relocations). */

typedef unsigned long ULONG;            /* 32 bits on Windows, both targets */
typedef unsigned char UCHAR;
typedef unsigned char BOOLEAN;
typedef void *PVOID;
#if defined(_WIN64)
typedef unsigned long long ULONG_PTR;
#else
typedef unsigned long ULONG_PTR;
#endif
typedef ULONG_PTR SIZE_T;
#define NTAPI __stdcall

typedef struct _RTLP_HP_HEAP_GLOBALS {
    ULONG_PTR HeapKey;                              /* +0x00 */
    ULONG_PTR LfhKey;                               /* +0x08 x64, +0x04 x86 */
    UCHAR Rest[0x80 - 2 * sizeof(ULONG_PTR)];       /* FailureInfo, Flags, RandomSeed, ... */
} RTLP_HP_HEAP_GLOBALS;

_Static_assert(sizeof(RTLP_HP_HEAP_GLOBALS) == 0x80, "sizeof _RTLP_HP_HEAP_GLOBALS");

ULONG_PTR RtlpLFHKey = (ULONG_PTR)0x1F2E3D4C5B6A7988ULL;

RTLP_HP_HEAP_GLOBALS RtlpHpHeapGlobals = {
    (ULONG_PTR)0x0A1B2C3D4E5F6071ULL,
    (ULONG_PTR)0x1122334455667788ULL,
    { 0 },
};

ULONG RtlpStandInAllocCount;

static ULONG_PTR RtlpMixLfhKey(ULONG_PTR v) { return (v ^ RtlpLFHKey) * 33u + 7u; }

static ULONG_PTR RtlpHpMixHeapKey(ULONG_PTR v) {
    return (v ^ RtlpHpHeapGlobals.HeapKey) + (RtlpHpHeapGlobals.LfhKey & 0xFFFFu);
}

PVOID NTAPI RtlpAllocateHeapInternal(PVOID HeapHandle, SIZE_T Size) {
    RtlpStandInAllocCount += 1;
    return (PVOID)(RtlpMixLfhKey(Size) ^ RtlpHpMixHeapKey((ULONG_PTR)HeapHandle));
}

PVOID NTAPI RtlAllocateHeap(PVOID HeapHandle, ULONG Flags, SIZE_T Size) {
    return RtlpAllocateHeapInternal(HeapHandle, Size + (Flags & 8u));
}

BOOLEAN NTAPI RtlFreeHeap(PVOID HeapHandle, ULONG Flags, PVOID BaseAddress) {
    return (BOOLEAN)((RtlpHpMixHeapKey((ULONG_PTR)BaseAddress) ^ (ULONG_PTR)HeapHandle ^ Flags) & 1u);
}

SIZE_T NTAPI RtlSizeHeap(PVOID HeapHandle, ULONG Flags, PVOID BaseAddress) {
    return RtlpMixLfhKey((ULONG_PTR)BaseAddress) >> (Flags & 3u) ^ (ULONG_PTR)HeapHandle;
}
