//! Opening a dump: map the file, check the container, lower its streams into owned tables.
//!
//! Opening costs time proportional to the stream directory and the number of memory ranges,
//! never to the size of the captured memory: no memory byte is touched until it is read.
//! The `minidump` crate parses the header, directory and the fixed-shape streams (SystemInfo,
//! MiscInfo, ModuleList, ThreadList, MemoryInfoList). The two memory-list streams are indexed by
//! [`crate::memory`], because the crate returns only one of them and cannot read across ranges.

use std::path::Path;
use std::sync::Arc;

use minidump::{
    CodeView, Minidump, MinidumpMemoryInfoList, MinidumpMiscInfo, MinidumpModuleList, MinidumpSystemInfo,
    MinidumpThreadList,
};

use crate::error::{Error, Result};
use crate::mapped::FileBytes;
use crate::memory::{AddressSpace, CapturedRange, ClipReason};
use crate::target::{Arch, Target, WinVersion};

/// `MINIDUMP_STREAM_TYPE` values used here (minidumpapiset.h).
pub mod stream {
    /// ThreadListStream.
    pub const THREAD_LIST: u32 = 3;
    /// ModuleListStream.
    pub const MODULE_LIST: u32 = 4;
    /// MemoryListStream.
    pub const MEMORY_LIST: u32 = 5;
    /// SystemInfoStream.
    pub const SYSTEM_INFO: u32 = 7;
    /// Memory64ListStream.
    pub const MEMORY64_LIST: u32 = 9;
    /// MiscInfoStream.
    pub const MISC_INFO: u32 = 15;
    /// MemoryInfoListStream.
    pub const MEMORY_INFO_LIST: u32 = 16;
}

/// The name of a stream type as spelled in minidumpapiset.h, or `Stream0x…` for unknown ones.
pub fn stream_name(kind: u32) -> String {
    let known = match kind {
        0 => "UnusedStream",
        1 => "ReservedStream0",
        2 => "ReservedStream1",
        3 => "ThreadListStream",
        4 => "ModuleListStream",
        5 => "MemoryListStream",
        6 => "ExceptionStream",
        7 => "SystemInfoStream",
        8 => "ThreadExListStream",
        9 => "Memory64ListStream",
        10 => "CommentStreamA",
        11 => "CommentStreamW",
        12 => "HandleDataStream",
        13 => "FunctionTableStream",
        14 => "UnloadedModuleListStream",
        15 => "MiscInfoStream",
        16 => "MemoryInfoListStream",
        17 => "ThreadInfoListStream",
        18 => "HandleOperationListStream",
        19 => "TokenStream",
        20 => "JavaScriptDataStream",
        21 => "SystemMemoryInfoStream",
        22 => "ProcessVmCountersStream",
        23 => "IptTraceStream",
        24 => "ThreadNamesStream",
        0x4352_7000..=0x4352_7fff => return format!("CrashpadStream{:#x}", kind),
        0x4767_0000..=0x4767_ffff => return format!("BreakpadStream{:#x}", kind),
        _ => return format!("Stream{kind:#x}"),
    };
    known.to_owned()
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// Stream type number.
    pub kind: u32,
    /// Its name.
    pub name: String,
    /// Data size in bytes.
    pub size: u32,
    /// File offset.
    pub rva: u32,
}

/// A loaded module (ModuleListStream), with its CodeView (PDB) identity when present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Full path as recorded by the dump writer.
    pub path: String,
    /// Load address.
    pub base: u64,
    /// SizeOfImage.
    pub size: u32,
    /// File version `a.b.c.d` from VS_FIXEDFILEINFO, when the record is valid.
    pub version: Option<String>,
    /// PE TimeDateStamp.
    pub timestamp: u32,
    /// PE CheckSum.
    pub checksum: u32,
    /// PDB file name from the RSDS CodeView record.
    pub pdb_name: Option<String>,
    /// PDB GUID, 32 upper-case hex digits as used in symbol-store paths.
    pub pdb_guid: Option<String>,
    /// PDB age.
    pub pdb_age: Option<u32>,
}

impl Module {
    /// The file name part of the path (`ntdll.dll`).
    pub fn name(&self) -> &str {
        self.path.rsplit(['\\', '/']).next().unwrap_or(&self.path)
    }

    /// One past the last byte of the image.
    pub fn end(&self) -> u64 {
        self.base.saturating_add(u64::from(self.size))
    }
}

/// A thread (ThreadListStream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thread {
    /// Thread id.
    pub id: u32,
    /// Address of its TEB (the native one: the 64-bit TEB of a WOW64 thread).
    pub teb: u64,
    /// Lowest captured stack address.
    pub stack_start: u64,
    /// Captured stack bytes.
    pub stack_size: u32,
    /// Suspend count.
    pub suspend_count: u32,
    /// Where the thread's `CONTEXT` lies in the file (`ThreadContext`: RVA and size; size 0 when
    /// the dump writer stored none). Read it with [`Dump::thread_context`].
    pub context: (u32, u32),
}

/// One MemoryInfoListStream entry (MINIDUMP_MEMORY_INFO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// BaseAddress.
    pub base: u64,
    /// RegionSize.
    pub size: u64,
    /// State: MEM_COMMIT 0x1000, MEM_RESERVE 0x2000, MEM_FREE 0x10000.
    pub state: u32,
    /// Type: MEM_PRIVATE 0x20000, MEM_MAPPED 0x40000, MEM_IMAGE 0x1000000.
    pub kind: u32,
    /// Protect (PAGE_* constants).
    pub protect: u32,
    /// AllocationBase.
    pub allocation_base: u64,
    /// AllocationProtect.
    pub allocation_protect: u32,
}

/// Everything lowered out of the streams at open time.
#[derive(Debug, Clone)]
pub struct DumpInfo {
    /// Architecture and OS version.
    pub target: Target,
    /// Service pack string, when recorded.
    pub csd_version: Option<String>,
    /// Header TimeDateStamp: when the dump was written (seconds since the Unix epoch, UTC).
    pub timestamp: u32,
    /// Header Flags (MINIDUMP_TYPE).
    pub flags: u64,
    /// Process id (MiscInfo).
    pub pid: Option<u32>,
    /// Process creation time (MiscInfo, seconds since the Unix epoch).
    pub process_create_time: Option<u32>,
    /// The stream directory.
    pub streams: Vec<StreamInfo>,
    /// Loaded modules, in stream order.
    pub modules: Vec<Module>,
    /// Threads, in stream order.
    pub threads: Vec<Thread>,
    /// MemoryInfoList entries, or `None` when the stream is absent.
    pub regions: Option<Vec<Region>>,
    /// Problems that did not stop the open (clipped memory ranges, unreadable optional streams).
    pub warnings: Vec<String>,
}

/// An open dump: its file bytes, stream tables and captured address space.
#[derive(Debug, Clone)]
pub struct Dump {
    info: DumpInfo,
    memory: AddressSpace,
    file_size: u64,
    bytes: Arc<FileBytes>,
}

const HEADER_SIZE: u64 = 32;
const DIRECTORY_ENTRY_SIZE: u64 = 12;
const MDMP: u32 = 0x504d_444d;

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

impl Dump {
    /// Open and index the dump at `path`. The file is mapped, not read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_bytes(FileBytes::map(path.as_ref())?)
    }

    /// Index a dump held in `bytes`.
    pub fn from_bytes(bytes: FileBytes) -> Result<Self> {
        let bytes = Arc::new(bytes);
        let file_size = bytes.len() as u64;
        let streams = check_container(&bytes)?;
        let md = Minidump::read(&bytes[..]).map_err(|e| Error::NotAMinidump { reason: e.to_string() })?;
        let mut warnings = Vec::new();

        let sys: MinidumpSystemInfo =
            required_stream(&md, &streams, stream::SYSTEM_INFO, "SystemInfoStream", file_size)?;
        let arch = match sys.raw.processor_architecture {
            0 => Arch::X86,
            9 => Arch::X64,
            other => {
                return Err(Error::Unsupported {
                    reason: format!("processor architecture {other} (only x86 = 0 and x64 = 9 are supported)"),
                })
            }
        };
        let target = Target {
            arch,
            version: WinVersion {
                major: sys.raw.major_version,
                minor: sys.raw.minor_version,
                build: sys.raw.build_number,
            },
        };
        let csd_version = sys.csd_version().map(|s| s.into_owned()).filter(|s| !s.is_empty());

        let (pid, process_create_time) = match optional_stream::<MinidumpMiscInfo>(
            &md,
            &streams,
            stream::MISC_INFO,
            "MiscInfoStream",
            file_size,
            &mut warnings,
        )? {
            Some(misc) => (misc.raw.process_id().copied(), misc.raw.process_create_time().copied()),
            None => (None, None),
        };

        let modules = match optional_stream::<MinidumpModuleList>(
            &md,
            &streams,
            stream::MODULE_LIST,
            "ModuleListStream",
            file_size,
            &mut warnings,
        )? {
            Some(list) => list.iter().map(lower_module).collect(),
            None => Vec::new(),
        };

        let threads = match optional_stream::<MinidumpThreadList>(
            &md,
            &streams,
            stream::THREAD_LIST,
            "ThreadListStream",
            file_size,
            &mut warnings,
        )? {
            Some(list) => list
                .threads
                .iter()
                .map(|t| Thread {
                    id: t.raw.thread_id,
                    teb: t.raw.teb,
                    stack_start: t.raw.stack.start_of_memory_range,
                    stack_size: t.raw.stack.memory.data_size,
                    suspend_count: t.raw.suspend_count,
                    context: (t.raw.thread_context.rva, t.raw.thread_context.data_size),
                })
                .collect(),
            None => Vec::new(),
        };

        let regions = optional_stream::<MinidumpMemoryInfoList>(
            &md,
            &streams,
            stream::MEMORY_INFO_LIST,
            "MemoryInfoListStream",
            file_size,
            &mut warnings,
        )?
        .map(|list| {
            list.iter()
                .map(|m| Region {
                    base: m.raw.base_address,
                    size: m.raw.region_size,
                    state: m.raw.state,
                    kind: m.raw._type,
                    protect: m.raw.protection,
                    allocation_base: m.raw.allocation_base,
                    allocation_protect: m.raw.allocation_protection,
                })
                .collect()
        });

        let mut declared = Vec::new();
        for s in &streams {
            match s.kind {
                stream::MEMORY_LIST => memory_list(&bytes, s, &mut declared)?,
                stream::MEMORY64_LIST => memory64_list(&bytes, s, &mut declared)?,
                _ => {}
            }
        }
        let (memory, clipped) = AddressSpace::new(Arc::clone(&bytes), declared);
        for c in clipped {
            let (va, len, at) = (c.declared.va, c.declared.len, c.declared.file_offset);
            warnings.push(match c.reason {
                ClipReason::PastEnd => format!(
                    "memory range {va:#x}+{len:#x} declared at file offset {at:#x} runs past the end of the file ({file_size:#x} bytes); kept {:#x} bytes",
                    c.kept
                ),
                ClipReason::SharedFileBytes => format!(
                    "memory range {va:#x}+{len:#x} at file offset {at:#x} reuses file bytes of another range; kept {:#x} bytes",
                    c.kept
                ),
            });
        }

        let info = DumpInfo {
            target,
            csd_version,
            timestamp: md.header.time_date_stamp,
            flags: md.header.flags,
            pid,
            process_create_time,
            streams,
            modules,
            threads,
            regions,
            warnings,
        };
        Ok(Dump { info, memory, file_size, bytes: Arc::clone(&bytes) })
    }

    /// Stream tables and metadata.
    pub fn info(&self) -> &DumpInfo {
        &self.info
    }

    /// The captured address space.
    pub fn memory(&self) -> &AddressSpace {
        &self.memory
    }

    /// Architecture and OS version.
    pub fn target(&self) -> Target {
        self.info.target
    }

    /// Size of the dump file in bytes.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// The raw `CONTEXT` record of `thread` (x86 or AMD64 layout, per [`Target::arch`]), when the
    /// ThreadList stored one that lies inside the file; `None` otherwise.
    pub fn thread_context(&self, thread: &Thread) -> Option<&[u8]> {
        let (rva, size) = (thread.context.0 as usize, thread.context.1 as usize);
        if size == 0 {
            return None;
        }
        self.bytes.get(rva..rva.checked_add(size)?)
    }

    /// The module whose image contains `addr`, if any. O(modules).
    pub fn module_at(&self, addr: u64) -> Option<&Module> {
        self.info.modules.iter().find(|m| m.base <= addr && addr < m.end())
    }

    /// The module whose file name is `name` (case-insensitive), if loaded.
    pub fn module_named(&self, name: &str) -> Option<&Module> {
        self.info.modules.iter().find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

/// Check the header and the directory against the file size before anything else reads them,
/// so that a truncated or foreign file gets an error that names the offending offset.
fn check_container(b: &[u8]) -> Result<Vec<StreamInfo>> {
    let file_size = b.len() as u64;
    if file_size == 0 {
        return Err(Error::NotAMinidump { reason: "the file is empty (0 bytes)".into() });
    }
    if file_size >= 4 && u32_at(b, 0) != MDMP {
        let head: Vec<String> = b[..4].iter().map(|x| format!("{x:02x}")).collect();
        return Err(Error::NotAMinidump {
            reason: format!("the file starts with bytes {} instead of the signature \"MDMP\"", head.join(" ")),
        });
    }
    if file_size < HEADER_SIZE {
        return Err(Error::Truncated { what: "MINIDUMP_HEADER".into(), offset: 0, end: HEADER_SIZE, file_size });
    }
    if u32_at(b, 4) & 0xffff != 0xa793 {
        return Err(Error::NotAMinidump {
            reason: format!("header version {:#x} is not MINIDUMP_VERSION 0xa793", u32_at(b, 4) & 0xffff),
        });
    }
    let count = u64::from(u32_at(b, 8));
    let dir = u64::from(u32_at(b, 12));
    let dir_end = dir + count * DIRECTORY_ENTRY_SIZE;
    if dir_end > file_size {
        return Err(Error::Truncated {
            what: format!("stream directory ({count} entries)"),
            offset: dir,
            end: dir_end,
            file_size,
        });
    }
    let mut streams = Vec::with_capacity(count as usize);
    for i in 0..count {
        let e = (dir + i * DIRECTORY_ENTRY_SIZE) as usize;
        let kind = u32_at(b, e);
        let size = u32_at(b, e + 4);
        let rva = u32_at(b, e + 8);
        if kind == 0 {
            continue; // UnusedStream entries pad the directory.
        }
        streams.push(StreamInfo { kind, name: stream_name(kind), size, rva });
    }
    Ok(streams)
}

fn stream_bounds_error(s: &StreamInfo, file_size: u64) -> Error {
    Error::Truncated {
        what: s.name.clone(),
        offset: u64::from(s.rva),
        end: u64::from(s.rva) + u64::from(s.size),
        file_size,
    }
}

fn stream_fits(s: &StreamInfo, file_size: u64) -> bool {
    u64::from(s.rva) + u64::from(s.size) <= file_size
}

fn required_stream<'a, S: minidump::MinidumpStream<'a>>(
    md: &'a Minidump<'a, &'a [u8]>,
    streams: &[StreamInfo],
    kind: u32,
    name: &'static str,
    file_size: u64,
) -> Result<S> {
    let s = streams.iter().find(|s| s.kind == kind).ok_or(Error::MissingStream { stream: name })?;
    if !stream_fits(s, file_size) {
        return Err(stream_bounds_error(s, file_size));
    }
    md.get_stream::<S>().map_err(|e| Error::CorruptStream { stream: name, reason: e.to_string() })
}

/// A stream that the dump may lack. Absent: `None`. Cut off by the end of the file: an error,
/// because a dump truncated inside its metadata cannot be trusted. Present but unparsable: a
/// warning, and `None`, so that the rest of the dump stays usable.
fn optional_stream<'a, S: minidump::MinidumpStream<'a>>(
    md: &'a Minidump<'a, &'a [u8]>,
    streams: &[StreamInfo],
    kind: u32,
    name: &'static str,
    file_size: u64,
    warnings: &mut Vec<String>,
) -> Result<Option<S>> {
    let Some(s) = streams.iter().find(|s| s.kind == kind) else { return Ok(None) };
    if !stream_fits(s, file_size) {
        return Err(stream_bounds_error(s, file_size));
    }
    match md.get_stream::<S>() {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            warnings.push(format!("{name} at file offset {:#x} could not be parsed: {e}", s.rva));
            Ok(None)
        }
    }
}

fn lower_module(m: &minidump::MinidumpModule) -> Module {
    let v = &m.raw.version_info;
    let version = (v.signature == minidump_common::format::VS_FFI_SIGNATURE).then(|| {
        format!(
            "{}.{}.{}.{}",
            v.file_version_hi >> 16,
            v.file_version_hi & 0xffff,
            v.file_version_lo >> 16,
            v.file_version_lo & 0xffff
        )
    });
    let (pdb_name, pdb_guid, pdb_age) = match &m.codeview_info {
        Some(CodeView::Pdb70(cv)) => {
            let name_bytes = cv.pdb_file_name.split(|&c| c == 0).next().unwrap_or(&[]);
            let g = &cv.signature;
            let guid = format!(
                "{:08X}{:04X}{:04X}{}",
                g.data1,
                g.data2,
                g.data3,
                g.data4.iter().map(|b| format!("{b:02X}")).collect::<String>()
            );
            (Some(String::from_utf8_lossy(name_bytes).into_owned()), Some(guid), Some(cv.age))
        }
        Some(CodeView::Pdb20(cv)) => {
            let name_bytes = cv.pdb_file_name.split(|&c| c == 0).next().unwrap_or(&[]);
            (Some(String::from_utf8_lossy(name_bytes).into_owned()), None, Some(cv.age))
        }
        _ => (None, None, None),
    };
    Module {
        path: m.name.clone(),
        base: m.raw.base_of_image,
        size: m.raw.size_of_image,
        version,
        timestamp: m.raw.time_date_stamp,
        checksum: m.raw.checksum,
        pdb_name,
        pdb_guid,
        pdb_age,
    }
}

/// MINIDUMP_MEMORY_LIST: u32 count, then count × MINIDUMP_MEMORY_DESCRIPTOR
/// { u64 StartOfMemoryRange; u32 DataSize; u32 Rva } (minidumpapiset.h).
fn memory_list(b: &[u8], s: &StreamInfo, out: &mut Vec<CapturedRange>) -> Result<()> {
    let file_size = b.len() as u64;
    let start = u64::from(s.rva);
    let body = stream_body(b, s)?;
    if body.len() < 4 {
        return Err(corrupt("MemoryListStream", format!("{} bytes cannot hold the range count", body.len())));
    }
    let count = u64::from(u32_at(body, 0));
    // Some writers pad the count to 8 bytes; accept both exact sizes.
    let header = if 4 + count * 16 == body.len() as u64 { 4 } else { 8 };
    let need = header + count * 16;
    if need > body.len() as u64 {
        if start + need > file_size {
            return Err(Error::Truncated {
                what: format!("MemoryListStream ({count} descriptors)"),
                offset: start,
                end: start + need,
                file_size,
            });
        }
        return Err(corrupt(
            "MemoryListStream",
            format!("{count} descriptors need {need:#x} bytes; the stream has {:#x}", body.len()),
        ));
    }
    for i in 0..count {
        let d = (header + i * 16) as usize;
        out.push(CapturedRange {
            va: u64_at(body, d),
            len: u64::from(u32_at(body, d + 8)),
            file_offset: u64::from(u32_at(body, d + 12)),
        });
    }
    Ok(())
}

/// MINIDUMP_MEMORY64_LIST: u64 NumberOfMemoryRanges, u64 BaseRva, then
/// MINIDUMP_MEMORY_DESCRIPTOR64 { u64 StartOfMemoryRange; u64 DataSize } each; the data of all
/// ranges lies back to back from BaseRva (minidumpapiset.h).
fn memory64_list(b: &[u8], s: &StreamInfo, out: &mut Vec<CapturedRange>) -> Result<()> {
    let body = stream_body(b, s)?;
    if body.len() < 16 {
        return Err(corrupt("Memory64ListStream", format!("{} bytes cannot hold the header", body.len())));
    }
    let count = u64_at(body, 0);
    let mut rva = u64_at(body, 8);
    let need = count.checked_mul(16).and_then(|n| n.checked_add(16));
    if need.is_none_or(|n| n > body.len() as u64) {
        return Err(corrupt(
            "Memory64ListStream",
            format!("{count} descriptors do not fit the stream's {:#x} bytes", body.len()),
        ));
    }
    // A dump cut inside its MemoryListStream data, before the Memory64 data begins (e.g.
    // `x64_win10.dmp` cut at 0x3390 with BaseRva 0x7b90), has a BaseRva past the end of the file.
    // Its descriptors are intact, so the dump still opens: every Memory64 range is then clipped to
    // nothing by `AddressSpace::new` and reported, and what the MemoryList holds stays readable.
    for i in 0..count {
        let d = (16 + i * 16) as usize;
        let va = u64_at(body, d);
        let len = u64_at(body, d + 8);
        out.push(CapturedRange { va, len, file_offset: rva });
        rva = rva.saturating_add(len);
    }
    Ok(())
}

fn stream_body<'b>(b: &'b [u8], s: &StreamInfo) -> Result<&'b [u8]> {
    let file_size = b.len() as u64;
    if !stream_fits(s, file_size) {
        return Err(stream_bounds_error(s, file_size));
    }
    Ok(&b[s.rva as usize..(s.rva as usize + s.size as usize)])
}

fn corrupt(stream: &'static str, reason: String) -> Error {
    Error::CorruptStream { stream, reason }
}
