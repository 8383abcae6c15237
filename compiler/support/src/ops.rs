//! Checked operations used by generated handlers. Every partial operation
//! returns `Err(HandlerError)` with the spec location instead of panicking.

use crate::error::{ErrorKind, HandlerError, Loc};
use std::collections::BTreeMap;
use std::fmt::Display;

/// The integer types of the spec language.
pub trait Int: Copy + Ord + Display + Default {
    fn c_add(self, o: Self) -> Option<Self>;
    fn c_sub(self, o: Self) -> Option<Self>;
    fn c_mul(self, o: Self) -> Option<Self>;
    fn c_div(self, o: Self) -> Option<Self>;
    fn c_rem(self, o: Self) -> Option<Self>;
    fn c_neg(self) -> Option<Self>;
    fn to_i128(self) -> i128;
    fn from_i128(v: i128) -> Option<Self>;
}

macro_rules! impl_int {
    ($($t:ty),*) => {$(
        impl Int for $t {
            #[inline] fn c_add(self, o: Self) -> Option<Self> { self.checked_add(o) }
            #[inline] fn c_sub(self, o: Self) -> Option<Self> { self.checked_sub(o) }
            #[inline] fn c_mul(self, o: Self) -> Option<Self> { self.checked_mul(o) }
            #[inline] fn c_div(self, o: Self) -> Option<Self> { self.checked_div(o) }
            #[inline] fn c_rem(self, o: Self) -> Option<Self> { self.checked_rem(o) }
            #[inline] fn c_neg(self) -> Option<Self> { (0 as $t).checked_sub(self) }
            #[inline] fn to_i128(self) -> i128 { self as i128 }
            #[inline] fn from_i128(v: i128) -> Option<Self> { <$t>::try_from(v).ok() }
        }
    )*};
}
impl_int!(u8, u16, u32, u64, i8, i16, i32, i64);

#[inline]
pub fn add<T: Int>(a: T, b: T, at: Loc) -> Result<T, HandlerError> {
    a.c_add(b)
        .ok_or_else(|| HandlerError::new(ErrorKind::Overflow, at, format!("{a} + {b}")))
}

#[inline]
pub fn sub<T: Int>(a: T, b: T, at: Loc) -> Result<T, HandlerError> {
    a.c_sub(b)
        .ok_or_else(|| HandlerError::new(ErrorKind::Overflow, at, format!("{a} - {b}")))
}

#[inline]
pub fn mul<T: Int>(a: T, b: T, at: Loc) -> Result<T, HandlerError> {
    a.c_mul(b)
        .ok_or_else(|| HandlerError::new(ErrorKind::Overflow, at, format!("{a} * {b}")))
}

#[inline]
pub fn div<T: Int>(a: T, b: T, at: Loc) -> Result<T, HandlerError> {
    if b == T::default() {
        return Err(HandlerError::new(ErrorKind::DivisionByZero, at, format!("{a} / 0")));
    }
    a.c_div(b)
        .ok_or_else(|| HandlerError::new(ErrorKind::Overflow, at, format!("{a} / {b}")))
}

#[inline]
pub fn rem<T: Int>(a: T, b: T, at: Loc) -> Result<T, HandlerError> {
    if b == T::default() {
        return Err(HandlerError::new(ErrorKind::DivisionByZero, at, format!("{a} % 0")));
    }
    a.c_rem(b)
        .ok_or_else(|| HandlerError::new(ErrorKind::Overflow, at, format!("{a} % {b}")))
}

#[inline]
pub fn neg<T: Int>(a: T, at: Loc) -> Result<T, HandlerError> {
    a.c_neg()
        .ok_or_else(|| HandlerError::new(ErrorKind::Overflow, at, format!("-{a}")))
}

/// Checked conversion between integer types (`x as u32`).
#[inline]
pub fn cast<S: Int, T: Int>(v: S, at: Loc) -> Result<T, HandlerError> {
    T::from_i128(v.to_i128()).ok_or_else(|| HandlerError::new(ErrorKind::ConversionOutOfRange, at, format!("{v}")))
}

/// A mutable `m[k]`, for assigning inside an existing entry.
#[inline]
pub fn map_get_mut<'a, K: Ord + std::fmt::Debug, V>(
    m: &'a mut BTreeMap<K, V>,
    k: &K,
    at: Loc,
) -> Result<&'a mut V, HandlerError> {
    match m.get_mut(k) {
        Some(v) => Ok(v),
        None => Err(HandlerError::new(ErrorKind::MissingKey, at, format!("{k:?}"))),
    }
}

/// `m[k]`
#[inline]
pub fn map_get<'a, K: Ord + std::fmt::Debug, V>(m: &'a BTreeMap<K, V>, k: &K, at: Loc) -> Result<&'a V, HandlerError> {
    m.get(k)
        .ok_or_else(|| HandlerError::new(ErrorKind::MissingKey, at, format!("{k:?}")))
}

/// `l[i]`
#[inline]
pub fn list_get<T, I: Int>(l: &[T], i: I, at: Loc) -> Result<&T, HandlerError> {
    let ix = i.to_i128();
    if ix < 0 || ix >= l.len() as i128 {
        return Err(HandlerError::new(
            ErrorKind::IndexOutOfRange,
            at,
            format!("index {ix}, length {}", l.len()),
        ));
    }
    Ok(&l[ix as usize])
}

/// `l.get(i)`: total.
#[inline]
pub fn list_get_opt<T: Clone, I: Int>(l: &[T], i: I) -> Option<T> {
    let ix = i.to_i128();
    if ix < 0 || ix >= l.len() as i128 {
        None
    } else {
        Some(l[ix as usize].clone())
    }
}

/// A mutable `l[i]` for assignment.
#[inline]
pub fn list_get_mut<T, I: Int>(l: &mut [T], i: I, at: Loc) -> Result<&mut T, HandlerError> {
    let ix = i.to_i128();
    let len = l.len();
    if ix < 0 || ix >= len as i128 {
        return Err(HandlerError::new(
            ErrorKind::IndexOutOfRange,
            at,
            format!("index {ix}, length {len}"),
        ));
    }
    Ok(&mut l[ix as usize])
}

#[inline]
pub fn unwrap<T>(o: Option<T>, at: Loc) -> Result<T, HandlerError> {
    o.ok_or_else(|| HandlerError::new(ErrorKind::UnwrapNone, at, ""))
}

pub fn min<'a, T: Ord + Clone + 'a>(it: impl IntoIterator<Item = &'a T>, at: Loc) -> Result<T, HandlerError> {
    it.into_iter()
        .min()
        .cloned()
        .ok_or_else(|| HandlerError::new(ErrorKind::EmptyCollection, at, "min"))
}

pub fn max<'a, T: Ord + Clone + 'a>(it: impl IntoIterator<Item = &'a T>, at: Loc) -> Result<T, HandlerError> {
    it.into_iter()
        .max()
        .cloned()
        .ok_or_else(|| HandlerError::new(ErrorKind::EmptyCollection, at, "max"))
}

pub fn sum<'a, T: Int + 'a>(it: impl IntoIterator<Item = &'a T>, at: Loc) -> Result<T, HandlerError> {
    let mut acc = T::default();
    for x in it {
        acc = add(acc, *x, at)?;
    }
    Ok(acc)
}

/// The size of a majority quorum of `n` nodes.
#[inline]
pub fn majority(n: usize) -> u64 {
    (n / 2 + 1) as u64
}

/// `l.slice(from, to)`: elements `from..to`.
pub fn slice<T: Clone>(l: &[T], from: u64, to: u64, at: Loc) -> Result<Vec<T>, HandlerError> {
    if from > to || to > l.len() as u64 {
        return Err(HandlerError::new(
            ErrorKind::IndexOutOfRange,
            at,
            format!("slice {from}..{to}, length {}", l.len()),
        ));
    }
    Ok(l[from as usize..to as usize].to_vec())
}

/// `l.skip(n)`: total, empty when `n` is past the end.
pub fn skip<T: Clone>(l: &[T], n: u64) -> Vec<T> {
    l.iter().skip(n.min(usize::MAX as u64) as usize).cloned().collect()
}

/// `l.take(n)`: total.
pub fn take<T: Clone>(l: &[T], n: u64) -> Vec<T> {
    l.iter().take(n.min(usize::MAX as u64) as usize).cloned().collect()
}

/// `l.take(n)` as a slice, for comparisons that need no copy.
pub fn take_slice<T>(l: &[T], n: u64) -> &[T] {
    &l[..l.len().min(n.min(usize::MAX as u64) as usize)]
}

/// `l.skip(n)` as a slice.
pub fn skip_slice<T>(l: &[T], n: u64) -> &[T] {
    &l[l.len().min(n.min(usize::MAX as u64) as usize)..]
}

/// `truncate(n)` with a spec integer.
pub fn truncate<T, I: Int>(l: &mut Vec<T>, n: I) {
    let n = n.to_i128().clamp(0, usize::MAX as i128) as usize;
    l.truncate(n);
}

/// `drop_first(n)` with a spec integer: removes the first `n` elements, or
/// all of them if there are fewer.
pub fn drop_first<T, I: Int>(l: &mut Vec<T>, n: I) {
    let n = n.to_i128().clamp(0, l.len() as i128) as usize;
    l.drain(..n);
}

/// `range(lo, hi)`: `lo..hi` as a list, at most `max_len` long.
pub fn range<I: Int>(lo: I, hi: I, max_len: u64, at: Loc) -> Result<Vec<I>, HandlerError> {
    let (a, b) = (lo.to_i128(), hi.to_i128());
    if b <= a {
        return Ok(Vec::new());
    }
    if (b - a) as u128 > max_len as u128 {
        return Err(HandlerError::new(
            ErrorKind::IndexOutOfRange,
            at,
            format!("range({a}, {b}) has more than {max_len} elements"),
        ));
    }
    Ok((a..b).filter_map(I::from_i128).collect())
}

/// Converts a count to a spec integer type.
#[inline]
pub fn len_as<I: Int>(n: usize, at: Loc) -> Result<I, HandlerError> {
    I::from_i128(n as i128).ok_or_else(|| HandlerError::new(ErrorKind::ConversionOutOfRange, at, format!("{n}")))
}

pub fn assert(cond: bool, at: Loc, text: &str) -> Result<(), HandlerError> {
    if cond {
        Ok(())
    } else {
        Err(HandlerError::new(ErrorKind::AssertionFailed, at, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let at = Loc(1, 2, 0);
        assert_eq!(add(u64::MAX, 1, at).unwrap_err().kind, ErrorKind::Overflow);
        assert_eq!(sub(0u8, 1, at).unwrap_err().kind, ErrorKind::Overflow);
        assert_eq!(neg(i64::MIN, at).unwrap_err().kind, ErrorKind::Overflow);
        assert_eq!(div(1u32, 0, at).unwrap_err().kind, ErrorKind::DivisionByZero);
        assert_eq!(
            cast::<u64, u8>(300, at).unwrap_err().kind,
            ErrorKind::ConversionOutOfRange
        );
        assert_eq!(add(2u64, 3, at).unwrap(), 5);
    }

    #[test]
    fn partial_collection_ops_report_location() {
        let at = Loc(7, 9, 0);
        let e = list_get(&[1, 2, 3], 3u64, at).unwrap_err();
        assert_eq!((e.kind, e.at), (ErrorKind::IndexOutOfRange, at));
        assert!(max(Vec::<u64>::new().iter(), at).is_err());
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert!(slice(&[1, 2], 1, 3, at).is_err());
        assert_eq!(skip(&[1, 2, 3], 5), Vec::<i32>::new());
    }
}
