//! Rules about the source text that the compiler does not check:
//!
//! * `unsafe` appears only in the file mapping (`src/mapped.rs`) and, once it exists, the one
//!   prefetch wrapper beside it (`src/prefetch.rs`). `Cargo.toml` denies `unsafe_code`, but an
//!   `#[allow(unsafe_code)]` anywhere would lift that; so neither `unsafe` nor the allow may
//!   appear in any other file under `src/`.
//! * Every function in a `#[pymethods]` block runs its body through
//!   `crate::python::errors::guarded`, so that a panic anywhere below a Python entry point
//!   reaches Python as `ntheap.InternalError` naming the operation, never as a
//!   `PanicException`.

use std::path::{Path, PathBuf};

/// The files that may hold `unsafe` code.
const UNSAFE_ALLOWED: [&str; 2] = ["src/mapped.rs", "src/prefetch.rs"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src` with comments, string and char literals blanked out (newlines kept), so that words and
/// braces in them are not mistaken for code.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |out: &mut String, s: &[u8]| {
        for &c in s {
            out.push(if c == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(b"/*") {
            let end = src[i + 2..].find("*/").map_or(rest.len(), |e| e + 4);
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(b"r#\"") || rest.starts_with(b"r\"") {
            let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let start = 2 + hashes;
            let end = src[i + start..].find(&close).map_or(rest.len(), |e| start + e + close.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == b'\'' && rest.len() > 2 && (rest[2] == b'\'' || rest[1] == b'\\') {
            // A char literal ('{', '\n', '\''); a lifetime ('a) has no closing quote nearby.
            let end = rest[2..].iter().position(|&c| c == b'\'').map_or(1, |e| e + 3);
            blank(&mut out, &rest[..end]);
            i += end;
        } else {
            out.push(rest[0] as char);
            i += 1;
        }
    }
    out
}

fn relative(p: &Path) -> String {
    p.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().to_string_lossy().replace('\\', "/")
}

#[test]
fn unsafe_code_only_in_the_mmap_module() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut offenders = Vec::new();
    for f in &files {
        let rel = relative(f);
        if UNSAFE_ALLOWED.contains(&rel.as_str()) {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(f).unwrap());
        for (n, line) in code.lines().enumerate() {
            let words = line.split(|c: char| !(c.is_alphanumeric() || c == '_'));
            if words.clone().any(|w| w == "unsafe" || w == "unsafe_code") {
                offenders.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "unsafe outside {UNSAFE_ALLOWED:?}:\n{}", offenders.join("\n"));
}

#[test]
fn the_scanner_sees_through_comments_and_strings() {
    let code = code_only("let s = \"unsafe { }\"; // unsafe\nlet c = '{'; /* unsafe */ fn f<'a>() {}\n");
    assert!(!code.contains("unsafe"));
    assert_eq!(code.matches('{').count(), 1);
    assert_eq!(code.lines().count(), 2);
}

/// The functions of every `#[pymethods]` block in `code`: (name, line, body).
fn pymethods(code: &str) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    // Module functions: the `fn` after each `#[pyfunction]`.
    let mut from = 0;
    while let Some(at) = code[from..].find("#[pyfunction]") {
        let start = from + at;
        let f = start + find_fn(&code[start..]).unwrap();
        let name: String = code[f + 3..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let bopen = f + code[f..].find('{').unwrap();
        let bclose = matching(code, bopen);
        out.push((name, code[..f].lines().count() + 1, code[bopen..=bclose].to_string()));
        from = bclose;
    }
    let mut from = 0;
    while let Some(at) = code[from..].find("#[pymethods]") {
        let start = from + at;
        let open = start + code[start..].find('{').unwrap();
        let close = matching(code, open);
        let block = &code[open + 1..close];
        let mut i = 0;
        while let Some(f) = find_fn(&block[i..]) {
            let fstart = i + f;
            let name: String = block[fstart + 3..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let bopen = fstart + block[fstart..].find('{').unwrap();
            let bclose = matching(block, bopen);
            let line = code[..open + 1 + fstart].lines().count();
            out.push((name, line, block[bopen..=bclose].to_string()));
            i = bclose + 1;
        }
        from = close;
    }
    out
}

/// Offset of the next `fn ` that starts a function item.
fn find_fn(s: &str) -> Option<usize> {
    let mut i = 0;
    while let Some(f) = s[i..].find("fn ") {
        let at = i + f;
        if at == 0 || !s.as_bytes()[at - 1].is_ascii_alphanumeric() && s.as_bytes()[at - 1] != b'_' {
            return Some(at);
        }
        i = at + 3;
    }
    None
}

fn matching(s: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in s[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced braces")
}

#[test]
fn every_python_entry_point_is_guarded() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/python"), &mut files);
    files.sort();
    let mut count = 0;
    let mut unguarded = Vec::new();
    for f in &files {
        let code = code_only(&std::fs::read_to_string(f).unwrap());
        for (name, line, body) in pymethods(&code) {
            count += 1;
            // The first statement is the guard: `guarded(` with the operation's name.
            if !body[1..].trim_start().starts_with("guarded(") {
                unguarded.push(format!("{}:{line}: fn {name}", relative(f)));
            }
        }
    }
    assert!(count > 80, "found only {count} Python entry points");
    assert!(unguarded.is_empty(), "{} entry points without `guarded`:\n{}", unguarded.len(), unguarded.join("\n"));
}
