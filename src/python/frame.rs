//! `ntheap._core.frame_marks` and `frame_codes`: the per-row work of
//! `ntheap.allocations.frame` (one DataFrame of many dumps' allocations), in Rust threads without
//! the GIL. Python keeps the work done once per distinct stack or type (keys, labels, the
//! categories); these two passes are the only ones over every row.
//!
//! Rows `starts[k]..starts[k + 1]` of the columns are dump `k`'s. A stack id indexes that dump's
//! stack table (-1: no stack); a type id that dump's types (-1: none, the row's content class
//! names it).

use std::ops::Range;

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rayon::prelude::*;

use crate::python::errors::guarded;
use crate::scan::in_pool;

/// Content classes a row without a type can have (the `content` column is a `u8`).
const CONTENT_SLOTS: usize = 256;

fn dump_rows(starts: &[usize], rows: usize) -> PyResult<Vec<Range<usize>>> {
    let ok = starts.first() == Some(&0) && starts.last() == Some(&rows) && starts.windows(2).all(|w| w[0] <= w[1]);
    if !ok {
        return Err(PyValueError::new_err(format!("starts must rise from 0 to the {rows} rows")));
    }
    Ok(starts.windows(2).map(|w| w[0]..w[1]).collect())
}

fn slice<'a, T: numpy::Element>(a: &'a PyReadonlyArray1<'_, T>, what: &str) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|_| PyValueError::new_err(format!("{what} must be a contiguous array")))
}

/// The type slot of a row: its type id, or (no type) `n_types` + its content class.
#[inline]
fn type_slot(type_id: i32, content: u8, n_types: usize) -> usize {
    usize::try_from(type_id).unwrap_or(n_types + usize::from(content))
}

/// Which stack ids and which type slots the rows of each dump use: per dump, a bool per stack
/// id plus one last for "no stack" (-1), and a bool per type id then per content class. A row
/// whose id is out of its dump's range raises `ValueError` naming the dump's index, the id and
/// the range.
#[pyfunction]
#[pyo3(signature = (stack_id, type_id, content, starts, n_stacks, n_types, workers=None))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn frame_marks<'py>(
    py: Python<'py>,
    stack_id: PyReadonlyArray1<'py, i32>,
    type_id: PyReadonlyArray1<'py, i32>,
    content: PyReadonlyArray1<'py, u8>,
    starts: Vec<usize>,
    n_stacks: Vec<usize>,
    n_types: Vec<usize>,
    workers: Option<usize>,
) -> PyResult<Vec<(Bound<'py, PyArray1<bool>>, Bound<'py, PyArray1<bool>>)>> {
    guarded("frame_marks", || {
        let (sid, tid, con) = (slice(&stack_id, "stack_id")?, slice(&type_id, "type_id")?, slice(&content, "content")?);
        if tid.len() != sid.len() || con.len() != sid.len() {
            return Err(PyValueError::new_err("stack_id, type_id and content must have the same length"));
        }
        let dumps = dump_rows(&starts, sid.len())?;
        if n_stacks.len() != dumps.len() || n_types.len() != dumps.len() {
            return Err(PyValueError::new_err("one stack count and one type count per dump"));
        }
        let marks: Vec<Result<(Vec<bool>, Vec<bool>), String>> = py.detach(|| {
            in_pool(workers, || {
                dumps
                    .par_iter()
                    .enumerate()
                    .map(|(k, rows)| {
                        let (ns, nt) = (n_stacks[k], n_types[k]);
                        let mut stacks = vec![false; ns + 1];
                        for &s in &sid[rows.clone()] {
                            let at = if s == -1 { Some(ns) } else { usize::try_from(s).ok().filter(|&i| i < ns) };
                            match at {
                                Some(i) => stacks[i] = true,
                                None => {
                                    return Err(format!(
                                        "dump {k}: a block refers to stack id {s}, but the dump has {ns} stacks"
                                    ))
                                }
                            }
                        }
                        let mut types = vec![false; nt + CONTENT_SLOTS];
                        for (&t, &c) in tid[rows.clone()].iter().zip(&con[rows.clone()]) {
                            if t < -1 || usize::try_from(t).is_ok_and(|i| i >= nt) {
                                return Err(format!(
                                    "dump {k}: a block refers to type id {t}, but the dump has {nt} types"
                                ));
                            }
                            types[type_slot(t, c, nt)] = true;
                        }
                        Ok((stacks, types))
                    })
                    .collect()
            })
        });
        marks
            .into_iter()
            .map(|m| {
                let (s, t) = m.map_err(PyValueError::new_err)?;
                Ok((s.into_pyarray(py), t.into_pyarray(py)))
            })
            .collect()
    })
}

/// One lookup table per dump, borrowed.
fn tables<'a>(v: &'a [PyReadonlyArray1<'_, i32>], dumps: usize, what: &str) -> PyResult<Vec<&'a [i32]>> {
    if v.len() != dumps {
        return Err(PyValueError::new_err(format!("one {what} table per dump")));
    }
    v.iter().map(|a| slice(a, what)).collect()
}

/// A code type: the smallest signed integer that holds every category code.
trait Code: Copy + Send + Sync + numpy::Element + 'static {
    fn from_code(v: i32) -> Self;
}

impl Code for i8 {
    fn from_code(v: i32) -> Self {
        i8::try_from(v).unwrap_or(-1)
    }
}

impl Code for i16 {
    fn from_code(v: i32) -> Self {
        i16::try_from(v).unwrap_or(-1)
    }
}

impl Code for i32 {
    fn from_code(v: i32) -> Self {
        v
    }
}

/// `out[i] = lut_k[index(i)]` for the rows of every dump `k`, dumps on the pool's threads.
fn gather<T: Code>(dumps: &[Range<usize>], luts: &[&[i32]], index: impl Fn(usize, usize) -> usize + Sync) -> Vec<T> {
    let n = dumps.last().map_or(0, |r| r.end);
    let mut out = vec![T::from_code(-1); n];
    let mut parts = Vec::with_capacity(dumps.len());
    let mut rest = out.as_mut_slice();
    for r in dumps {
        let (head, tail) = rest.split_at_mut(r.len());
        parts.push(head);
        rest = tail;
    }
    parts.into_par_iter().enumerate().for_each(|(k, part)| {
        let lut = luts[k];
        let start = dumps[k].start;
        for (j, o) in part.iter_mut().enumerate() {
            *o = T::from_code(lut.get(index(k, start + j)).copied().unwrap_or(-1));
        }
    });
    out
}

/// The `stack_key`, `top_frame` and `type` codes of every row: dump `k`'s rows read
/// `stack_luts[k]` / `top_luts[k]` at their stack id (the last entry for -1) and `type_luts[k]`
/// at their type slot (as [`frame_marks`] numbers them). Each column comes back in the smallest
/// signed integer type that holds its `categories` count (-1: missing).
#[pyfunction]
#[pyo3(signature = (stack_id, type_id, content, starts, stack_luts, top_luts, type_luts, categories, workers=None))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn frame_codes<'py>(
    py: Python<'py>,
    stack_id: PyReadonlyArray1<'py, i32>,
    type_id: PyReadonlyArray1<'py, i32>,
    content: PyReadonlyArray1<'py, u8>,
    starts: Vec<usize>,
    stack_luts: Vec<PyReadonlyArray1<'py, i32>>,
    top_luts: Vec<PyReadonlyArray1<'py, i32>>,
    type_luts: Vec<PyReadonlyArray1<'py, i32>>,
    categories: (usize, usize, usize),
    workers: Option<usize>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    guarded("frame_codes", || {
        let (sid, tid, con) = (slice(&stack_id, "stack_id")?, slice(&type_id, "type_id")?, slice(&content, "content")?);
        if tid.len() != sid.len() || con.len() != sid.len() {
            return Err(PyValueError::new_err("stack_id, type_id and content must have the same length"));
        }
        let dumps = dump_rows(&starts, sid.len())?;
        let (s, t, y) = (
            tables(&stack_luts, dumps.len(), "stack")?,
            tables(&top_luts, dumps.len(), "top frame")?,
            tables(&type_luts, dumps.len(), "type")?,
        );
        // Stack id -1 reads the last entry; a type slot needs the dump's type count.
        let stack_index = |k: usize, i: usize| usize::try_from(sid[i]).unwrap_or(s[k].len().saturating_sub(1));
        let top_index = |k: usize, i: usize| usize::try_from(sid[i]).unwrap_or(t[k].len().saturating_sub(1));
        let type_index = |k: usize, i: usize| type_slot(tid[i], con[i], y[k].len().saturating_sub(CONTENT_SLOTS));
        let (a, b, c) = py.detach(|| {
            in_pool(workers, || {
                (
                    CodesOut::new(categories.0, &dumps, &s, stack_index),
                    CodesOut::new(categories.1, &dumps, &t, top_index),
                    CodesOut::new(categories.2, &dumps, &y, type_index),
                )
            })
        });
        Ok((a.into_py(py), b.into_py(py), c.into_py(py)))
    })
}

/// Codes computed without the GIL, turned into a numpy array with it.
enum CodesOut {
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
}

impl CodesOut {
    fn new(
        categories: usize,
        dumps: &[Range<usize>],
        luts: &[&[i32]],
        index: impl Fn(usize, usize) -> usize + Sync,
    ) -> Self {
        if categories <= 127 {
            CodesOut::I8(gather(dumps, luts, index))
        } else if categories <= 32767 {
            CodesOut::I16(gather(dumps, luts, index))
        } else {
            CodesOut::I32(gather(dumps, luts, index))
        }
    }

    fn into_py(self, py: Python<'_>) -> Bound<'_, PyAny> {
        match self {
            CodesOut::I8(v) => v.into_pyarray(py).into_any(),
            CodesOut::I16(v) => v.into_pyarray(py).into_any(),
            CodesOut::I32(v) => v.into_pyarray(py).into_any(),
        }
    }
}
