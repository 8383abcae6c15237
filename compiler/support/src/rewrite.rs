//! Node-id rewriting, for symmetry reduction.
//!
//! stateright's own `Rewrite<Id>` is implemented for pairs but not for wider
//! tuples, and the orphan rule stops generated code from adding those. So
//! generated types implement this trait (and stateright's, by delegation).
//! A rewrite maps every node id through a function and rebuilds ordered
//! collections, whose order may change with the ids.

use stateright::actor::Id;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

pub trait Rewrite: Sized {
    fn rewrite<F: Fn(Id) -> Id>(&self, f: &F) -> Self;
}

/// A permutation of node ids: `map[old] = new`; ids past the end are fixed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdMap {
    pub map: Vec<Id>,
}

impl IdMap {
    pub fn identity(n: usize) -> IdMap {
        IdMap {
            map: (0..n).map(Id::from).collect(),
        }
    }

    #[inline]
    pub fn get(&self, id: Id) -> Id {
        self.map.get(usize::from(id)).copied().unwrap_or(id)
    }

    pub fn apply<T: Rewrite>(&self, x: &T) -> T {
        x.rewrite(&|id| self.get(id))
    }
}

impl Rewrite for Id {
    #[inline]
    fn rewrite<F: Fn(Id) -> Id>(&self, f: &F) -> Self {
        f(*self)
    }
}

macro_rules! noop {
    ($($t:ty),*) => {$(
        impl Rewrite for $t {
            #[inline]
            fn rewrite<F: Fn(Id) -> Id>(&self, _: &F) -> Self { self.clone() }
        }
    )*};
}
noop!(
    (),
    bool,
    u8,
    u16,
    u32,
    u64,
    i8,
    i16,
    i32,
    i64,
    usize,
    String,
    crate::Bytes,
    crate::HandlerError
);

impl<T: Rewrite> Rewrite for Option<T> {
    fn rewrite<F: Fn(Id) -> Id>(&self, f: &F) -> Self {
        self.as_ref().map(|x| x.rewrite(f))
    }
}

impl<T: Rewrite> Rewrite for Box<T> {
    fn rewrite<F: Fn(Id) -> Id>(&self, f: &F) -> Self {
        Box::new((**self).rewrite(f))
    }
}

impl<T: Rewrite> Rewrite for Arc<T> {
    fn rewrite<F: Fn(Id) -> Id>(&self, f: &F) -> Self {
        Arc::new((**self).rewrite(f))
    }
}

impl<T: Rewrite> Rewrite for Vec<T> {
    fn rewrite<F: Fn(Id) -> Id>(&self, f: &F) -> Self {
        self.iter().map(|x| x.rewrite(f)).collect()
    }
}

impl<T: Rewrite> Rewrite for VecDeque<T> {
    fn rewrite<F: Fn(Id) -> Id>(&self, f: &F) -> Self {
        self.iter().map(|x| x.rewrite(f)).collect()
    }
}

impl<T: Rewrite + Ord> Rewrite for BTreeSet<T> {
    fn rewrite<F: Fn(Id) -> Id>(&self, f: &F) -> Self {
        self.iter().map(|x| x.rewrite(f)).collect()
    }
}

/// A map rewritten by a function that merges ids (symmetry's profiles
/// collapse interchangeable servers into one) keeps, of the entries whose
/// keys merge, the greatest value: the result must not depend on which of
/// them came first. A permutation merges nothing.
impl<K: Rewrite + Ord, V: Rewrite + Ord> Rewrite for BTreeMap<K, V> {
    fn rewrite<F: Fn(Id) -> Id>(&self, f: &F) -> Self {
        let mut out = BTreeMap::new();
        for (k, v) in self {
            let v = v.rewrite(f);
            match out.entry(k.rewrite(f)) {
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(v);
                }
                std::collections::btree_map::Entry::Occupied(mut e) => {
                    if v > *e.get() {
                        e.insert(v);
                    }
                }
            }
        }
        out
    }
}

macro_rules! tuple {
    ($($n:tt $t:ident),+) => {
        impl<$($t: Rewrite),+> Rewrite for ($($t,)+) {
            fn rewrite<F: Fn(Id) -> Id>(&self, f: &F) -> Self { ($(self.$n.rewrite(f),)+) }
        }
    };
}
tuple!(0 A);
tuple!(0 A, 1 B);
tuple!(0 A, 1 B, 2 C);
tuple!(0 A, 1 B, 2 C, 3 D);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 G);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 G, 6 H);
tuple!(0 A, 1 B, 2 C, 3 D, 4 E, 5 G, 6 H, 7 I);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewriting_reorders_collections() {
        let swap = IdMap {
            map: vec![Id::from(1), Id::from(0)],
        };
        let s: BTreeSet<Id> = [Id::from(0)].into_iter().collect();
        assert_eq!(swap.apply(&s), [Id::from(1)].into_iter().collect());
        let m: BTreeMap<Id, (Id, u64)> = [(Id::from(0), (Id::from(1), 7))].into_iter().collect();
        let r = swap.apply(&m);
        assert_eq!(r.get(&Id::from(1)), Some(&(Id::from(0), 7)));
        assert_eq!(swap.get(Id::from(5)), Id::from(5));
    }

    #[test]
    fn merging_ids_keeps_the_greatest_value_whatever_the_order() {
        let merge = |_: Id| Id::from(9);
        let a: BTreeMap<Id, u64> = [(Id::from(0), 7), (Id::from(1), 3)].into_iter().collect();
        let b: BTreeMap<Id, u64> = [(Id::from(0), 3), (Id::from(1), 7)].into_iter().collect();
        assert_eq!(a.rewrite(&merge), b.rewrite(&merge));
        assert_eq!(a.rewrite(&merge).get(&Id::from(9)), Some(&7));
    }
}
