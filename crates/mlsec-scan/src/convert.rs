//! `mlsec convert`: PyTorch state dicts and NumPy files to safetensors,
//! without executing anything.
//!
//! A small *concrete* pickle interpreter that knows only how to build
//! containers and tensors: the opcodes a state dict uses, and calls to the
//! tensor-rebuild allow-list (`torch._utils._rebuild_tensor_v2`,
//! `_rebuild_parameter`, `collections.OrderedDict`, typed storages). Any other
//! global, or any opcode it does not need, stops the conversion with an error
//! naming it. Unlike `pickle.load(weights_only=True)` it cannot be talked into
//! calling anything: there is nothing to call.

use crate::zipread;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConvertError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ConvertError> {
    Err(ConvertError(msg.into()))
}

/// A tensor ready to be written: safetensors dtype, shape, little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub dtype: &'static str,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// The values the interpreter can hold.
#[derive(Debug, Clone)]
enum Val {
    None,
    Bool,
    Int(i64),
    /// An integer wider than 64 bits, as little-endian bytes (the legacy magic).
    Big(Rc<[u8]>),
    Float,
    Str(Rc<str>),
    Tuple(Rc<Vec<Val>>),
    List(Rc<std::cell::RefCell<Vec<Val>>>),
    Dict(Rc<std::cell::RefCell<Vec<(Val, Val)>>>),
    /// An allow-listed callable.
    Func(Func),
    /// A reference to a storage: (dtype, key).
    Storage(&'static str, usize, Rc<str>),
    Tensor(Rc<TensorRef>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    OrderedDict,
    RebuildTensorV2,
    RebuildTensor,
    RebuildParameter,
    /// A typed storage class: (safetensors dtype, element size).
    StorageType(&'static str, usize),
}

#[derive(Debug)]
struct TensorRef {
    dtype: &'static str,
    elem: usize,
    key: Rc<str>,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

fn storage_type(name: &str) -> Option<(&'static str, usize)> {
    Some(match name {
        "FloatStorage" => ("F32", 4),
        "DoubleStorage" => ("F64", 8),
        "HalfStorage" => ("F16", 2),
        "BFloat16Storage" => ("BF16", 2),
        "LongStorage" => ("I64", 8),
        "IntStorage" => ("I32", 4),
        "ShortStorage" => ("I16", 2),
        "CharStorage" => ("I8", 1),
        "ByteStorage" => ("U8", 1),
        "BoolStorage" => ("BOOL", 1),
        _ => return None,
    })
}

fn resolve(module: &str, name: &str) -> Result<Func, ConvertError> {
    Ok(match (module, name) {
        ("collections", "OrderedDict") => Func::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Func::RebuildTensorV2,
        ("torch._utils", "_rebuild_tensor") => Func::RebuildTensor,
        ("torch._utils", "_rebuild_parameter") => Func::RebuildParameter,
        ("torch", s) if storage_type(s).is_some() => {
            let (d, e) = storage_type(s).unwrap_or(("U8", 1));
            Func::StorageType(d, e)
        }
        _ => {
            return err(format!(
                "refusing global `{module}.{name}`: mlsec convert only rebuilds tensors and dicts \
                 (run `mlsec scan` to see what this file would do)"
            ))
        }
    })
}

/// Runs the interpreter over one pickle; returns the top-level value.
fn interpret(data: &[u8]) -> Result<(Val, usize), ConvertError> {
    let mut stack: Vec<Val> = Vec::new();
    let mut marks: Vec<usize> = Vec::new();
    let mut memo: HashMap<u64, Val> = HashMap::new();
    let mut p = 0usize;
    let take = |p: &mut usize, n: usize| -> Result<&[u8], ConvertError> {
        let end = p
            .checked_add(n)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| ConvertError("truncated pickle".into()))?;
        let s = &data[*p..end];
        *p = end;
        Ok(s)
    };
    let pop = |stack: &mut Vec<Val>| {
        stack
            .pop()
            .ok_or_else(|| ConvertError("pickle stack underflow".into()))
    };
    let pop_mark =
        |stack: &mut Vec<Val>, marks: &mut Vec<usize>| -> Result<Vec<Val>, ConvertError> {
            let m = marks
                .pop()
                .ok_or_else(|| ConvertError("pickle MARK missing".into()))?;
            if m > stack.len() {
                return err("pickle MARK beyond the stack");
            }
            Ok(stack.split_off(m))
        };
    let mut ops = 0u64;
    loop {
        ops += 1;
        if ops > 50_000_000 {
            return err("pickle too long");
        }
        let at = p;
        let op = *data
            .get(p)
            .ok_or_else(|| ConvertError("pickle ends without STOP".into()))?;
        p += 1;
        match op {
            0x80 => {
                take(&mut p, 1)?;
            }
            0x95 => {
                take(&mut p, 8)?;
            }
            b'.' => return Ok((pop(&mut stack)?, p)),
            b'}' => stack.push(Val::Dict(Default::default())),
            b']' => stack.push(Val::List(Default::default())),
            b')' => stack.push(Val::Tuple(Rc::new(Vec::new()))),
            b'N' => stack.push(Val::None),
            0x88 => stack.push(Val::Bool),
            0x89 => stack.push(Val::Bool),
            b'(' => marks.push(stack.len()),
            b'K' => stack.push(Val::Int(take(&mut p, 1)?[0] as i64)),
            b'M' => {
                let b = take(&mut p, 2)?;
                stack.push(Val::Int(u16::from_le_bytes([b[0], b[1]]) as i64))
            }
            b'J' => {
                let b = take(&mut p, 4)?;
                stack.push(Val::Int(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64))
            }
            0x8a => {
                let n = take(&mut p, 1)?[0] as usize;
                let b = take(&mut p, n)?;
                if n > 8 {
                    stack.push(Val::Big(b.into()));
                    continue;
                }
                let mut a = if b.last().is_some_and(|x| x & 0x80 != 0) {
                    [0xff; 8]
                } else {
                    [0; 8]
                };
                a[..n].copy_from_slice(b);
                stack.push(Val::Int(i64::from_le_bytes(a)));
            }
            b'G' => {
                take(&mut p, 8)?;
                stack.push(Val::Float);
            }
            0x8c => {
                let n = take(&mut p, 1)?[0] as usize;
                let s = String::from_utf8_lossy(take(&mut p, n)?).into_owned();
                stack.push(Val::Str(s.into()));
            }
            // Python 2 `str` (SHORT_BINSTRING, BINSTRING), as latin-1 like torch.load does.
            b'U' => {
                let n = take(&mut p, 1)?[0] as usize;
                let s: String = take(&mut p, n)?.iter().map(|&c| c as char).collect();
                stack.push(Val::Str(s.into()));
            }
            b'T' => {
                let b = take(&mut p, 4)?;
                let n = usize::try_from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .map_err(|_| ConvertError("negative BINSTRING length".into()))?;
                let s: String = take(&mut p, n)?.iter().map(|&c| c as char).collect();
                stack.push(Val::Str(s.into()));
            }
            // bytes values (metadata); kept as opaque strings.
            b'C' => {
                let n = take(&mut p, 1)?[0] as usize;
                let s: String = take(&mut p, n)?.iter().map(|&c| c as char).collect();
                stack.push(Val::Str(s.into()));
            }
            b'B' => {
                let b = take(&mut p, 4)?;
                let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let s: String = take(&mut p, n)?.iter().map(|&c| c as char).collect();
                stack.push(Val::Str(s.into()));
            }
            b'X' => {
                let b = take(&mut p, 4)?;
                let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let s = String::from_utf8_lossy(take(&mut p, n)?).into_owned();
                stack.push(Val::Str(s.into()));
            }
            b'q' => {
                let k = take(&mut p, 1)?[0] as u64;
                memo.insert(
                    k,
                    stack
                        .last()
                        .cloned()
                        .ok_or_else(|| ConvertError("PUT on empty stack".into()))?,
                );
            }
            b'r' => {
                let b = take(&mut p, 4)?;
                let k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64;
                memo.insert(
                    k,
                    stack
                        .last()
                        .cloned()
                        .ok_or_else(|| ConvertError("PUT on empty stack".into()))?,
                );
            }
            0x94 => {
                let k = memo.len() as u64;
                memo.insert(
                    k,
                    stack
                        .last()
                        .cloned()
                        .ok_or_else(|| ConvertError("MEMOIZE on empty stack".into()))?,
                );
            }
            b'h' | b'j' => {
                let k = if op == b'h' {
                    take(&mut p, 1)?[0] as u64
                } else {
                    let b = take(&mut p, 4)?;
                    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64
                };
                stack.push(
                    memo.get(&k)
                        .cloned()
                        .ok_or_else(|| ConvertError(format!("memo key {k} missing")))?,
                );
            }
            b'0' => {
                pop(&mut stack)?;
            }
            b't' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Val::Tuple(Rc::new(items)));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return err("pickle stack underflow");
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Val::Tuple(Rc::new(items)));
            }
            b'a' => {
                let v = pop(&mut stack)?;
                match stack.last() {
                    Some(Val::List(l)) => l.borrow_mut().push(v),
                    _ => return err("APPEND to something that is not a list"),
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                match stack.last() {
                    Some(Val::List(l)) => l.borrow_mut().extend(items),
                    _ => return err("APPENDS to something that is not a list"),
                }
            }
            b's' | b'u' => {
                let items = if op == b's' {
                    let v = pop(&mut stack)?;
                    let k = pop(&mut stack)?;
                    vec![k, v]
                } else {
                    pop_mark(&mut stack, &mut marks)?
                };
                match stack.last() {
                    Some(Val::Dict(d)) => {
                        let mut d = d.borrow_mut();
                        let mut it = items.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            d.push((k, v));
                        }
                    }
                    _ => return err("SETITEM(S) on something that is not a dict"),
                }
            }
            b'c' => {
                let line = |p: &mut usize| -> Result<String, ConvertError> {
                    let rest = &data[*p..];
                    let i = rest
                        .iter()
                        .position(|&b| b == b'\n')
                        .ok_or_else(|| ConvertError("truncated GLOBAL".into()))?;
                    *p += i + 1;
                    Ok(String::from_utf8_lossy(&rest[..i]).into_owned())
                };
                let module = line(&mut p)?;
                let name = line(&mut p)?;
                stack.push(Val::Func(resolve(&module, &name)?));
            }
            0x93 => {
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                match (module, name) {
                    (Val::Str(m), Val::Str(n)) => stack.push(Val::Func(resolve(&m, &n)?)),
                    _ => return err("STACK_GLOBAL without string names"),
                }
            }
            b'Q' => {
                let pid = pop(&mut stack)?;
                stack.push(storage_from_pid(&pid)?);
            }
            b'R' => {
                let args = pop(&mut stack)?;
                let f = pop(&mut stack)?;
                let Val::Tuple(args) = args else {
                    return err("REDUCE without an argument tuple");
                };
                let Val::Func(f) = f else {
                    return err(format!("REDUCE on a non-callable at offset {at}"));
                };
                stack.push(call(f, &args)?);
            }
            b'b' => {
                // BUILD: state for an OrderedDict or Parameter is metadata; ignore it.
                pop(&mut stack)?;
                if stack.is_empty() {
                    return err("BUILD on an empty stack");
                }
            }
            other => {
                return err(format!(
                    "opcode 0x{other:02x} at offset {at} is not used by state dicts; refusing"
                ))
            }
        }
    }
}

fn storage_from_pid(pid: &Val) -> Result<Val, ConvertError> {
    let Val::Tuple(t) = pid else {
        return err("persistent id is not a tuple");
    };
    match t.as_slice() {
        [Val::Str(kind), Val::Func(Func::StorageType(dtype, elem)), Val::Str(key), _location, ..]
            if &**kind == "storage" =>
        {
            Ok(Val::Storage(dtype, *elem, key.clone()))
        }
        _ => err("persistent id is not a PyTorch storage reference"),
    }
}

fn ints(v: &Val, what: &str) -> Result<Vec<usize>, ConvertError> {
    match v {
        Val::Tuple(t) => t
            .iter()
            .map(|x| match x {
                Val::Int(n) if *n >= 0 => Ok(*n as usize),
                _ => err(format!("{what} holds a non-integer")),
            })
            .collect(),
        _ => err(format!("{what} is not a tuple")),
    }
}

fn call(f: Func, args: &[Val]) -> Result<Val, ConvertError> {
    match f {
        // Python 2 pickles an OrderedDict's items as its argument:
        // OrderedDict([[key, value], ...]).
        Func::OrderedDict => {
            let mut items = Vec::new();
            if let Some(Val::List(pairs)) = args.first() {
                for pair in pairs.borrow().iter() {
                    let kv: Vec<Val> = match pair {
                        Val::List(l) => l.borrow().clone(),
                        Val::Tuple(t) => t.to_vec(),
                        _ => return err("OrderedDict item is not a pair"),
                    };
                    match <[Val; 2]>::try_from(kv) {
                        Ok([k, v]) => items.push((k, v)),
                        Err(_) => return err("OrderedDict item is not a pair"),
                    }
                }
            }
            Ok(Val::Dict(Rc::new(std::cell::RefCell::new(items))))
        }
        Func::RebuildTensorV2 | Func::RebuildTensor => {
            let (
                Some(Val::Storage(dtype, elem, key)),
                Some(Val::Int(offset)),
                Some(size),
                Some(stride),
            ) = (args.first(), args.get(1), args.get(2), args.get(3))
            else {
                return err("_rebuild_tensor called with unexpected arguments");
            };
            Ok(Val::Tensor(Rc::new(TensorRef {
                dtype,
                elem: *elem,
                key: key.clone(),
                offset: usize::try_from(*offset)
                    .map_err(|_| ConvertError("negative storage offset".into()))?,
                shape: ints(size, "tensor size")?,
                stride: ints(stride, "tensor stride")?,
            })))
        }
        Func::RebuildParameter => match args.first() {
            Some(t @ Val::Tensor(_)) => Ok(t.clone()),
            _ => err("_rebuild_parameter without a tensor"),
        },
        Func::StorageType(..) => err("storage classes are only valid inside persistent ids"),
    }
}

/// Flattens the state dict to `name -> tensor`, nested dicts joined with `.`.
fn collect(
    v: &Val,
    prefix: &str,
    out: &mut Vec<(String, Rc<TensorRef>)>,
    depth: usize,
) -> Result<(), ConvertError> {
    if depth > 32 {
        return err("state dict nested too deeply");
    }
    match v {
        Val::Dict(d) => {
            for (k, v) in d.borrow().iter() {
                let key = match k {
                    Val::Str(s) => s.to_string(),
                    Val::Int(i) => i.to_string(),
                    _ => return err("state dict key is not a string"),
                };
                let name = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                collect(v, &name, out, depth + 1)?;
            }
        }
        Val::Tensor(t) => out.push((prefix.to_string(), t.clone())),
        // Non-tensor entries (epoch counters, config) have no safetensors form.
        _ => {}
    }
    Ok(())
}

impl TensorRef {
    /// Bytes of its storage this view reaches (offset + extent), in bytes.
    fn bytes_reached(&self) -> Option<usize> {
        if self.shape.contains(&0) {
            return Some(0);
        }
        let last = self
            .shape
            .iter()
            .zip(&self.stride)
            .try_fold(self.offset, |a, (&n, &s)| {
                a.checked_add((n - 1).checked_mul(s)?)
            })?;
        last.checked_add(1)?.checked_mul(self.elem)
    }
}

/// Materialises a tensor from its storage bytes, honouring offset and strides.
fn materialise(t: &TensorRef, storage: &[u8]) -> Result<Tensor, ConvertError> {
    let numel: usize = t
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| ConvertError("tensor size overflows".into()))?;
    if t.stride.len() != t.shape.len() {
        return err("tensor stride and size differ in length");
    }
    let mut data = Vec::with_capacity(numel.saturating_mul(t.elem).min(1 << 30));
    let mut idx = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        let lin = t.offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
        let start = lin
            .checked_mul(t.elem)
            .ok_or_else(|| ConvertError("offset overflows".into()))?;
        let bytes = storage
            .get(start..start + t.elem)
            .ok_or_else(|| ConvertError(format!("tensor reaches past its storage `{}`", t.key)))?;
        data.extend_from_slice(bytes);
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < t.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(Tensor {
        dtype: t.dtype,
        shape: t.shape.clone(),
        data,
    })
}

/// Converts a checkpoint or NumPy file's bytes to named tensors.
pub fn to_tensors(bytes: &[u8]) -> Result<BTreeMap<String, Tensor>, ConvertError> {
    if zipread::is_zip(bytes) {
        let ar = zipread::read(bytes, 100_000);
        let pkl = ar.members.iter().find(|m| m.name.ends_with("data.pkl"));
        if let Some(pkl) = pkl {
            let prefix = pkl.name.trim_end_matches("data.pkl").to_string();
            let data = zipread::member_data(bytes, pkl, 256 << 20).map_err(ConvertError)?;
            if data.len() > 256 << 20 {
                return err("data.pkl inflates past 256 MiB; refusing (a decompression bomb?)");
            }
            let (root, _) = interpret(&data)?;
            let mut named = Vec::new();
            collect(&root, "", &mut named, 0)?;
            let mut named_need: HashMap<Rc<str>, usize> = HashMap::new();
            for (_, t) in &named {
                let n = t
                    .bytes_reached()
                    .ok_or_else(|| ConvertError("tensor extent overflows".into()))?;
                let e = named_need.entry(t.key.clone()).or_default();
                *e = (*e).max(n);
            }
            let mut out = BTreeMap::new();
            let mut cache: HashMap<Rc<str>, std::borrow::Cow<[u8]>> = HashMap::new();
            for (name, t) in named {
                if !cache.contains_key(&t.key) {
                    let member = ar
                        .members
                        .iter()
                        .find(|m| m.name == format!("{prefix}data/{}", t.key))
                        .ok_or_else(|| {
                            ConvertError(format!("storage `{}` is missing from the archive", t.key))
                        })?;
                    // Inflate only as much as this storage's tensors reach.
                    let need = named_need.get(&t.key).copied().unwrap_or(0);
                    cache.insert(
                        t.key.clone(),
                        zipread::member_data(bytes, member, need as u64).map_err(ConvertError)?,
                    );
                }
                out.insert(name, materialise(&t, &cache[&t.key])?);
            }
            return Ok(out);
        }
        return npz_tensors(bytes, &ar);
    }
    if bytes.starts_with(b"\x93NUMPY") {
        let mut out = BTreeMap::new();
        out.insert("array".to_string(), npy_tensor(bytes)?);
        return Ok(out);
    }
    if bytes.len() > 2 && bytes[0] == 0x80 {
        return legacy_tensors(bytes);
    }
    err("not a PyTorch checkpoint (zip or legacy) or a NumPy .npy/.npz file")
}

/// Legacy layout: magic, protocol version, sys_info, the data pickle, the
/// storage keys, then each storage as an int64 element count and its bytes.
fn legacy_tensors(bytes: &[u8]) -> Result<BTreeMap<String, Tensor>, ConvertError> {
    let mut p = 0;
    let mut values = Vec::new();
    for _ in 0..5 {
        let (v, used) = interpret(&bytes[p..])?;
        values.push(v);
        p += used;
    }
    // 0x1950a86a20f9469cfc6c, little-endian.
    const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
    if !matches!(&values[0], Val::Big(b) if **b == MAGIC) {
        return err("not a legacy PyTorch checkpoint (magic number missing)");
    }
    let keys: Vec<Rc<str>> = match &values[4] {
        Val::List(l) => l
            .borrow()
            .iter()
            .map(|k| {
                if let Val::Str(s) = k {
                    Ok(s.clone())
                } else {
                    err("storage key is not a string")
                }
            })
            .collect::<Result<_, _>>()?,
        _ => return err("legacy checkpoint without a storage key list"),
    };
    let mut named = Vec::new();
    collect(&values[3], "", &mut named, 0)?;
    let elem_of: HashMap<Rc<str>, usize> =
        named.iter().map(|(_, t)| (t.key.clone(), t.elem)).collect();
    let mut storages: HashMap<Rc<str>, &[u8]> = HashMap::new();
    for k in keys {
        let n = bytes
            .get(p..p + 8)
            .ok_or_else(|| ConvertError("truncated storage header".into()))?;
        let numel = i64::from_le_bytes(n.try_into().unwrap_or_default());
        p += 8;
        let elem = *elem_of.get(&k).unwrap_or(&1);
        let len = usize::try_from(numel)
            .ok()
            .and_then(|n| n.checked_mul(elem))
            .ok_or_else(|| ConvertError("bad storage size".into()))?;
        let data = bytes
            .get(p..p + len)
            .ok_or_else(|| ConvertError(format!("storage `{k}` is truncated")))?;
        storages.insert(k, data);
        p += len;
    }
    let mut out = BTreeMap::new();
    for (name, t) in named {
        let s = storages
            .get(&t.key)
            .ok_or_else(|| ConvertError(format!("storage `{}` missing", t.key)))?;
        out.insert(name, materialise(&t, s)?);
    }
    Ok(out)
}

/// Total bytes (header and data) an `.npy` declares, from its first bytes.
fn npy_total_len(head: &[u8]) -> Result<usize, ConvertError> {
    let (off, _, elem, shape) = npy_header(head)?;
    shape
        .iter()
        .try_fold(elem, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_add(off))
        .ok_or_else(|| ConvertError("NPY size overflows".into()))
}

fn npy_tensor(bytes: &[u8]) -> Result<Tensor, ConvertError> {
    let (off, dtype, elem, shape) = npy_header(bytes)?;
    let n = shape
        .iter()
        .try_fold(elem, |a, &d| a.checked_mul(d))
        .ok_or_else(|| ConvertError("NPY size overflows".into()))?;
    let data = bytes
        .get(off..off + n)
        .ok_or_else(|| ConvertError("truncated NPY data".into()))?
        .to_vec();
    Ok(Tensor { dtype, shape, data })
}

/// (data offset, safetensors dtype, element size, shape) of an `.npy` header.
fn npy_header(bytes: &[u8]) -> Result<(usize, &'static str, usize, Vec<usize>), ConvertError> {
    let header_len = match bytes.get(6) {
        Some(1) => u16::from_le_bytes([bytes[8], bytes[9]]) as usize,
        Some(2) | Some(3) => u32::from_le_bytes(
            bytes
                .get(8..12)
                .and_then(|b| b.try_into().ok())
                .unwrap_or_default(),
        ) as usize,
        _ => return err("unsupported NPY version"),
    };
    let off = if bytes[6] == 1 { 10 } else { 12 } + header_len;
    let header = String::from_utf8_lossy(
        bytes
            .get(10..off)
            .ok_or_else(|| ConvertError("truncated NPY header".into()))?,
    )
    .to_string();
    let field = |key: &str| -> Option<String> {
        let i = header.find(&format!("'{key}':"))? + key.len() + 3;
        Some(header[i..].trim_start().to_string())
    };
    let descr = field("descr")
        .and_then(|d| d.split('\'').nth(1).map(str::to_string))
        .ok_or_else(|| ConvertError("NPY header without descr".into()))?;
    if descr.contains('O') {
        return err("refusing NumPy object array: its elements are pickles");
    }
    if field("fortran_order").is_some_and(|f| f.starts_with("True")) {
        return err("Fortran-order NPY arrays are not supported by convert yet");
    }
    let (dtype, elem): (&'static str, usize) = match descr.trim_start_matches(['<', '|', '=']) {
        "f4" => ("F32", 4),
        "f8" => ("F64", 8),
        "f2" => ("F16", 2),
        "i8" => ("I64", 8),
        "i4" => ("I32", 4),
        "i2" => ("I16", 2),
        "i1" => ("I8", 1),
        "u1" => ("U8", 1),
        "u2" => ("U16", 2),
        "u4" => ("U32", 4),
        "u8" => ("U64", 8),
        "b1" => ("BOOL", 1),
        other => {
            return err(format!(
                "NPY dtype `{other}` has no safetensors equivalent here"
            ))
        }
    };
    let shape_s = field("shape").ok_or_else(|| ConvertError("NPY header without shape".into()))?;
    let inner = shape_s
        .trim_start_matches('(')
        .split(')')
        .next()
        .unwrap_or("");
    let shape: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| ConvertError("bad NPY shape".into())))
        .collect::<Result<_, _>>()?;
    Ok((off, dtype, elem, shape))
}

fn npz_tensors(
    bytes: &[u8],
    ar: &zipread::Archive,
) -> Result<BTreeMap<String, Tensor>, ConvertError> {
    let mut out = BTreeMap::new();
    for m in &ar.members {
        let Some(name) = m.name.strip_suffix(".npy") else {
            continue;
        };
        // Header first, then only the bytes its shape and dtype declare: a
        // deflate bomb cannot make convert inflate more than the array itself.
        let head = zipread::member_data(bytes, m, 1 << 16).map_err(ConvertError)?;
        let need = npy_total_len(&head).map_err(|e| ConvertError(format!("{}: {e}", m.name)))?;
        let data = zipread::member_data(bytes, m, need as u64).map_err(ConvertError)?;
        out.insert(
            name.to_string(),
            npy_tensor(&data).map_err(|e| ConvertError(format!("{}: {e}", m.name)))?,
        );
    }
    if out.is_empty() {
        return err("zip archive holds neither a PyTorch data.pkl nor NumPy arrays");
    }
    Ok(out)
}

/// Serialises tensors as safetensors: 8-byte header length, JSON header
/// (padded with spaces to 8 bytes), then the tensors back to back, in name order.
pub fn write_safetensors(
    tensors: &BTreeMap<String, Tensor>,
    metadata: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert(
            "__metadata__".into(),
            serde_json::to_value(metadata).unwrap_or_default(),
        );
    }
    let mut offset = 0usize;
    for (name, t) in tensors {
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + t.data.len()]}),
        );
        offset += t.data.len();
    }
    let mut h = serde_json::to_vec(&header).unwrap_or_default();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + offset);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    for t in tensors.values() {
        out.extend_from_slice(&t.data);
    }
    out
}
