//! The core against the dumps written by the test dump builder (`tests/dumpbuilder/`, Python),
//! the same checked-in fixtures the Python tests use. Every expected value is read from the
//! builder's JSON beside each dump; the builder never uses the reader's layout tables.

use std::path::{Path, PathBuf};

use ntheap::heap::{self, BlockKind, HeapStatus};
use ntheap::process::{self, process_info};
use ntheap::{Dump, Error};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every `(dump, expected)` pair that describes a scenario (not the malformed files).
fn scenarios() -> Vec<(PathBuf, Value)> {
    let mut out: Vec<(PathBuf, Value)> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures exists")
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "json").then_some(p)
        })
        .filter_map(|json| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).ok()?).ok()?;
            v.get("scenario")?;
            Some((json.with_extension("dmp"), v))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 30, "expected the builder's scenarios, found {}", out.len());
    out
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an unsigned integer: {v}"))
}

#[test]
fn metadata_modules_threads_and_pebs() {
    for (path, exp) in scenarios() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let dump = Dump::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let t = dump.target();
        assert_eq!(t.arch.name(), exp["arch"].as_str().unwrap(), "{name}");
        assert_eq!(t.version.to_string(), exp["os_version"].as_str().unwrap(), "{name}");
        assert_eq!(process::is_wow64(&dump), exp["is_wow64"].as_bool().unwrap(), "{name}");
        assert_eq!(dump.info().pid.map(u64::from), exp["pid"].as_u64(), "{name}");
        assert_eq!(u64::from(dump.info().timestamp), u(&exp["timestamp"]), "{name}");
        let mods: Vec<(u64, u64)> = dump.info().modules.iter().map(|m| (m.base, u64::from(m.size))).collect();
        let want: Vec<(u64, u64)> =
            exp["modules"].as_array().unwrap().iter().map(|m| (u(&m["base"]), u(&m["size"]))).collect();
        assert_eq!(mods, want, "{name}");
        let threads: Vec<(u64, u64)> = dump.info().threads.iter().map(|t| (u64::from(t.id), t.teb)).collect();
        let want: Vec<(u64, u64)> =
            exp["threads"].as_array().unwrap().iter().map(|t| (u(&t["id"]), u(&t["teb"]))).collect();
        assert_eq!(threads, want, "{name}");

        let peb = &exp["peb"];
        match process_info(&dump) {
            Ok(p) => {
                assert_eq!(p.native.address, u(&peb["address"]), "{name}");
                assert_eq!(u64::from(p.native.nt_global_flag), u(&peb["nt_global_flag"]), "{name}");
                if peb["process_heaps_captured"].as_bool().unwrap() {
                    let heaps: Vec<u64> = peb["heaps"].as_array().unwrap().iter().map(u).collect();
                    assert_eq!(p.native.process_heaps.as_deref(), Some(&heaps[..]), "{name}");
                }
                assert_eq!(p.wow64.is_some(), exp["is_wow64"].as_bool().unwrap(), "{name}");
                if let Some(w) = &p.wow64 {
                    assert_eq!(w.address, u(&exp["peb32"]["address"]), "{name}");
                }
            }
            Err(Error::StructureNotCaptured { address, .. }) => {
                assert!(!peb["captured"].as_bool().unwrap(), "{name}");
                assert_eq!(address, u(&peb["address"]), "{name}");
            }
            Err(Error::NotFound { .. }) => assert!(exp["threads"].as_array().unwrap().is_empty(), "{name}"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

#[test]
fn heap_walks_match_the_builder() {
    let mut checked = 0;
    for (path, exp) in scenarios() {
        let Some(heaps) = exp.get("heaps") else { continue };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let dump = Dump::open(&path).unwrap();
        let report = heap::walk(&dump).unwrap();
        let all: Vec<&Value> = heaps
            .as_array()
            .unwrap()
            .iter()
            .chain(exp.get("heaps32").and_then(Value::as_array).into_iter().flatten())
            .collect();
        assert_eq!(report.heaps.len(), all.len(), "{name}");
        let clean = exp["corruption"].as_array().is_none_or(|c| c.is_empty());
        for e in all {
            let h = report.heap(u(&e["address"])).unwrap_or_else(|| panic!("{name}: heap {} missing", e["address"]));
            match e.get("type").and_then(Value::as_str).unwrap_or("nt") {
                "nt" => {}
                "page" => {
                    let walked = e["walked"].as_bool().unwrap();
                    assert_eq!(h.status == HeapStatus::Walked, walked, "{name}: page heap {:#x}", h.address);
                    if walked {
                        let p = h.page_heap.as_ref().expect("page-heap info");
                        assert_eq!((p.root, p.normal_heap), (u(&e["root"]), u(&e["normal_heap"])), "{name}");
                        assert_eq!((p.busy, p.freed), (u(&e["busy_count"]), u(&e["freed_count"])), "{name}");
                        assert_eq!(p.busy_bytes, u(&e["busy_user_bytes"]), "{name}");
                    }
                    checked += 1;
                    continue;
                }
                "segment" => {
                    let walked = e["walked"].as_bool().unwrap();
                    assert_eq!(h.status == HeapStatus::Walked, walked, "{name}: segment heap {:#x}", h.address);
                    if walked {
                        let s = h.segment_heap.as_ref().expect("segment-heap info");
                        assert_eq!(s.heap_key, Some(u(&e["heap_key"])), "{name}");
                        assert_eq!(s.lfh_key.map(u64::from), Some(u(&e["lfh_key"])), "{name}");
                        let mine: u64 = h
                            .blocks
                            .clone()
                            .filter(|&i| report.blocks.is_allocation[i])
                            .map(|i| report.blocks.user_size[i])
                            .sum();
                        assert_eq!(mine, u(&e["summary"]["busy_user_bytes_all"]), "{name}");
                    } else {
                        assert!(h.not_walked.is_some(), "{name}: a segment heap not walked says why");
                    }
                    checked += 1;
                    continue;
                }
                _ => {
                    assert_eq!(h.status, HeapStatus::NotWalked, "{name}");
                    continue;
                }
            }
            assert_eq!(h.status, HeapStatus::Walked, "{name}");
            assert_eq!(h.arch.name(), e["arch"].as_str().unwrap(), "{name}");
            assert_eq!(u64::from(h.flags), u(&e["flags"]), "{name}");
            assert_eq!(h.summary.reserved, u(&e["totals"]["reserved"]), "{name}");
            assert_eq!(h.summary.committed, u(&e["totals"]["committed"]), "{name}");
            assert_eq!(h.virtual_blocks.len(), e["walk"]["virtual_blocks"].as_array().unwrap().len(), "{name}");
            if clean && e["corruption"].as_array().is_none_or(|c| c.is_empty()) {
                assert_eq!(h.summary.free_bytes, u(&e["free"]["bytes"]), "{name}");
                assert_eq!(h.summary.free_blocks, u(&e["free"]["count"]), "{name}");
                let rows: Vec<u64> = report.blocks.address[h.blocks.clone()].to_vec();
                let mut rows_sorted = rows.clone();
                rows_sorted.sort_unstable();
                let want: Vec<u64> = e["blocks"].as_array().unwrap().iter().map(|b| u(&b["address"])).collect();
                assert_eq!(rows_sorted, want, "{name}: heap {:#x}", h.address);
                let busy_backend: u64 = h
                    .blocks
                    .clone()
                    .filter(|&i| report.blocks.is_allocation[i] && report.blocks.kind[i] == BlockKind::Backend.code())
                    .map(|i| report.blocks.user_size[i])
                    .sum();
                // A page heap's NormalHeap: the builder's back-end summary still counts the
                // light-page-heap containers as back-end blocks; busy_user_bytes_all is the check.
                if e.get("page_heap_owner").is_none_or(Value::is_null) {
                    assert_eq!(busy_backend, u(&e["busy"]["user_bytes"]), "{name}");
                }
                if let Some(all) = e["totals"].get("busy_user_bytes_all") {
                    let mine: u64 = h
                        .blocks
                        .clone()
                        .filter(|&i| report.blocks.is_allocation[i])
                        .map(|i| report.blocks.user_size[i])
                        .sum();
                    assert_eq!(mine, u(all), "{name}: heap {:#x}", h.address);
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} heaps checked");
}

/// A survey (`WalkDepth::Headers`) of every builder dump gives, for every heap, what the full
/// walk gives for everything but the blocks: the same heaps, headers, segments, UCRs, virtual
/// blocks and `!heap -s` figures (Free from `TotalFreeSize`, which the builder keeps equal to its
/// free blocks), no NT rows, and "List length" unknown.
#[test]
fn a_survey_agrees_with_the_walk_on_everything_but_the_blocks() {
    let mut surveyed = 0;
    for (path, exp) in scenarios() {
        if exp.get("heaps").is_none() {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let dump = Dump::open(&path).unwrap();
        let full = heap::walk(&dump).unwrap();
        let options = heap::WalkOptions { depth: heap::WalkDepth::Headers, ..Default::default() };
        let survey = heap::walk_with(&dump, &options).unwrap();
        assert_eq!(survey.heaps.len(), full.heaps.len(), "{name}");
        let clean = exp["corruption"].as_array().is_none_or(|c| c.is_empty());
        for (s, f) in survey.heaps.iter().zip(&full.heaps) {
            let what = format!("{name}: heap {:#x}", f.address);
            assert_eq!((s.address, s.kind, s.status, s.arch), (f.address, f.kind, f.status, f.arch), "{what}");
            assert_eq!(
                (s.flags, s.force_flags, s.front_end_type),
                (f.flags, f.force_flags, f.front_end_type),
                "{what}"
            );
            assert_eq!(
                (s.total_free_size, s.counters, s.lock_contention),
                (f.total_free_size, f.counters, f.lock_contention),
                "{what}"
            );
            let seg = |h: &heap::HeapInfo| -> Vec<(u64, u64, u64, usize, bool)> {
                h.segments
                    .iter()
                    .map(|g| (g.address, g.reserved_bytes, g.committed_bytes, g.ucrs.len(), g.walked))
                    .collect()
            };
            assert_eq!(seg(s), seg(f), "{what}");
            let va = |h: &heap::HeapInfo| -> Vec<(u64, u64, u64)> {
                h.virtual_blocks.iter().map(|v| (v.address, v.commit_size, v.user_size)).collect()
            };
            assert_eq!(va(s), va(f), "{what}");
            let (ss, fs) = (&s.summary, &f.summary);
            assert_eq!(
                (ss.reserved, ss.committed, ss.virtual_bytes, ss.ucr_count),
                (fs.reserved, fs.committed, fs.virtual_bytes, fs.ucr_count),
                "{what}"
            );
            assert_eq!(
                (ss.virtual_block_count, ss.virtual_block_bytes),
                (fs.virtual_block_count, fs.virtual_block_bytes),
                "{what}"
            );
            assert_eq!(ss.free(), fs.free(), "{what}");
            if f.kind == heap::HeapKind::Nt && f.status == HeapStatus::Walked {
                assert!(s.blocks.is_empty() && s.lfh.is_none(), "{what}: a survey has no NT rows");
                assert_eq!((ss.list_length(), fs.list_length().is_some()), (None, true), "{what}");
                if clean {
                    assert_eq!(
                        fs.header_free_bytes,
                        Some(fs.free_bytes),
                        "{what}: TotalFreeSize is the free blocks' Σ"
                    );
                }
                surveyed += 1;
            }
        }
        assert!(survey.summary_table().contains("List length \"?\""), "{name}");
    }
    assert!(surveyed >= 30, "only {surveyed} NT heaps surveyed");
}
