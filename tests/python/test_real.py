"""ntheap.Dump on real Windows dumps; expected values from ../shared/fixtures/real/PROVENANCE.md."""

from __future__ import annotations

import pytest
from conftest import real_dump

import ntheap


def test_wow64_fizzbuzz() -> None:
    dump = ntheap.Dump(real_dump("lldb-fizzbuzz_wow64.dmp"))
    assert (dump.arch, dump.process_arch, dump.is_wow64) == ("x64", "x86", True)
    assert (dump.os_version, dump.os_build) == ("6.1.7601", 7601)
    assert "Memory64ListStream" in dump.streams and "MemoryInfoListStream" in dump.streams
    assert len(dump.regions()) == 168
    peb, peb32 = dump.peb, dump.peb32
    assert peb32 is not None
    assert (peb.arch, peb.teb, peb.address, peb.nt_global_flag) == ("x64", 0x7EFDB000, 0x7EFDF000, 0)
    assert peb.process_heaps == [0x500000, 0x10000, 0x20000]
    assert (peb32.arch, peb32.teb, peb32.address) == ("x86", 0x7EFDD000, 0x7EFDE000)
    assert peb32.process_heaps == [0x700000, 0x460000]
    assert peb32.process_heap == 0x700000 and peb32.global_flags == []
    # The 32-bit heap's _HEAP.Signature at +0x64 (Win7 x86 layout).
    assert dump.read_u32(0x700000 + 0x64) == 0xEEFFEEFF


@pytest.mark.parametrize(
    "name,build,flags",
    [
        ("lldb-sigsegv-win10-x64.dmp", 16299, None),
        ("electron-node-minidump-windows.dmp", 14393, None),
        ("breakpad-tiny-exe-fastfail.dmp", 19042, 0x400),
        ("breakpad-tiny-exe-with-cet-xsave.dmp", 22000, None),
    ],
)
def test_win10_pebs(name: str, build: int, flags: object) -> None:
    dump = ntheap.Dump(real_dump(name))
    assert dump.arch == "x64" and not dump.is_wow64 and dump.os_build == build
    peb = dump.peb
    if flags is not None:
        assert peb.nt_global_flag == flags
    if peb.process_heaps is not None:
        assert peb.process_heaps[0] == peb.process_heap
        assert not dump.is_captured(peb.process_heap, 0x100)
    else:
        assert "not captured" in (peb.process_heaps_problem or "")


def test_peb_not_captured_real() -> None:
    dump = ntheap.Dump(real_dump("rust-minidump-invalid-parameter.dmp"))
    with pytest.raises(ntheap.MemoryNotCaptured, match="TEB of thread"):
        dump.peb


def test_windows_xp_has_no_layout() -> None:
    dump = ntheap.Dump(real_dump("rust-minidump-test-breakpad-minidump2.dmp"))
    assert (dump.arch, dump.os_build) == ("x86", 2600)
    assert len(dump.modules) > 0 and len(dump.threads) > 0
    with pytest.raises(ntheap.UnsupportedDumpError, match="2600"):
        dump.peb


def test_wow64_fizzbuzz_heaps() -> None:
    """PROVENANCE: five NT heaps; 0x700000 has LFH and one virtual block at 0xe0000 with
    CommitSize 0xd4000 holding the LFH structure (FrontEndHeap 0xe0020)."""
    dump = ntheap.Dump(real_dump("lldb-fizzbuzz_wow64.dmp"))
    heaps = dump.heaps
    assert [(h.address, h.arch, h.wow64_32bit) for h in heaps] == [
        (0x500000, "x64", False), (0x10000, "x64", False), (0x20000, "x64", False),
        (0x700000, "x86", True), (0x460000, "x86", True),
    ]
    assert all(h.kind == "nt" and h.status == "walked" and h.encoding_enabled for h in heaps)
    assert [h.layout for h in heaps] == ["Win7 SP1 x64"] * 3 + ["Win7 SP1 x86"] * 2
    assert len(dump.corruption()) == 0
    p = dump.heap(0x700000)
    assert p.fast_heap == "LFH" and p.front_end_type == 2
    (v,) = p.virtual_blocks
    assert (v.address, v.commit_size, v.user_address) == (0xE0000, 0xD4000, 0xE0020)
    # Every committed segment byte is covered by exactly one block or one UCR.
    blocks = dump.blocks()
    for h in heaps:
        for s in h.segments:
            in_seg = (blocks["segment"] == s.address) & (blocks["level"] == 0)
            covered = int(blocks["size"][in_seg].sum()) + sum(n for _, n in s.ucrs)
            assert covered == s.last_valid_entry - s.address, hex(s.address)
    assert not blocks["corruption"].any()


def test_win10_heaps_listed_but_not_captured() -> None:
    dump = ntheap.Dump(real_dump("lldb-sigsegv-win10-x64.dmp"))
    heaps = dump.heaps
    assert len(heaps) == dump.peb.number_of_heaps
    assert all(h.status == "not_captured" for h in heaps)
    assert set(dump.corruption()["kind_name"]) == {"NotCaptured"}
