//! Structure-of-arrays synapse storage, one contiguous block of slots per output row.
//!
//! Row `j` owns slots `row_start[j]..row_start[j + 1]`; the first `row_len[j]` are live and
//! sorted by input index. Pruning compacts a row in place and growth reuses the freed slots, so
//! after at most one re-layout (to each row's `max_fan_in`) memory never grows again.
//!
//! The per-synapse columns are declared once, in the `synapse_columns!` call below; the arena's
//! storage, row views, moves, re-layout, checks, equality, checkpoint and numpy export all come
//! from that list (docs/architecture.md, "Adding a synapse column").
use crate::topology::Neighbourhood;

/// A column's element type. Checkpoints and numpy see every column as a flat run of `u32` or
/// `f32` values, `WIDTH` of them per slot (a fixed-size array holds several levels per synapse).
pub trait Element: Copy + Send + Sync + 'static {
    const KIND: Kind;
    const WIDTH: usize;
    fn flat(v: &[Self]) -> Flat<'_>;
    fn from_flat(v: FlatVec) -> Option<Vec<Self>>;
    /// Bit-for-bit equality (so that NaN equals itself and 0.0 differs from -0.0).
    fn same(a: &Self, b: &Self) -> bool;
}

/// The flat element type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    U32,
    F32,
}

/// A column's values, flat, borrowed.
pub enum Flat<'a> {
    U32(&'a [u32]),
    F32(&'a [f32]),
}

/// A column's values, flat, owned.
pub enum FlatVec {
    U32(Vec<u32>),
    F32(Vec<f32>),
}

impl Element for u32 {
    const KIND: Kind = Kind::U32;
    const WIDTH: usize = 1;
    fn flat(v: &[Self]) -> Flat<'_> {
        Flat::U32(v)
    }
    fn from_flat(v: FlatVec) -> Option<Vec<Self>> {
        match v {
            FlatVec::U32(v) => Some(v),
            FlatVec::F32(_) => None,
        }
    }
    fn same(a: &Self, b: &Self) -> bool {
        a == b
    }
}

impl Element for f32 {
    const KIND: Kind = Kind::F32;
    const WIDTH: usize = 1;
    fn flat(v: &[Self]) -> Flat<'_> {
        Flat::F32(v)
    }
    fn from_flat(v: FlatVec) -> Option<Vec<Self>> {
        match v {
            FlatVec::F32(v) => Some(v),
            FlatVec::U32(_) => None,
        }
    }
    fn same(a: &Self, b: &Self) -> bool {
        a.to_bits() == b.to_bits()
    }
}

/// `N` levels per synapse (e.g. a cascade of hidden consolidation variables).
impl<const N: usize> Element for [f32; N] {
    const KIND: Kind = Kind::F32;
    const WIDTH: usize = N;
    fn flat(v: &[Self]) -> Flat<'_> {
        Flat::F32(v.as_flattened())
    }
    fn from_flat(v: FlatVec) -> Option<Vec<Self>> {
        match v {
            FlatVec::F32(v) if v.len() % N.max(1) == 0 => Some(
                v.chunks_exact(N.max(1))
                    .map(|c| c.try_into().expect("chunk of N"))
                    .collect(),
            ),
            _ => None,
        }
    }
    fn same(a: &Self, b: &Self) -> bool {
        a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }
}

/// How one column is stored, for readers that rebuild an arena from named columns.
#[derive(Debug, Clone, Copy)]
pub struct ColumnInfo {
    pub name: &'static str,
    pub kind: Kind,
    /// Flat values per slot.
    pub width: usize,
    /// Allocated only in some modes; an absent optional column has no values at all.
    pub optional: bool,
}

/// Per-row data zipped with the rows in `SynapseArena::par_rows`: a slice gives each row its
/// own element, `()` gives nothing, and pairs combine.
pub trait RowSide: Send + Sized {
    type One: Send;
    /// The side as raw pointers, so a block's rows can be walked by index (`RowsMut::walk`).
    type Raw: Copy;
    /// Rows covered, if this side has a length to check.
    fn rows(&self) -> Option<usize>;
    fn split(self, rows: usize) -> (Self, Self);
    fn raw(self) -> Self::Raw;
    /// The element of row `k` of the block `raw` came from.
    ///
    /// # Safety
    /// `k` is below the block's row count and each `k` is taken at most once.
    unsafe fn one_at(raw: Self::Raw, k: usize) -> Self::One;
}

impl<'a, T: Send> RowSide for &'a mut [T] {
    type One = &'a mut T;
    type Raw = *mut T;
    fn rows(&self) -> Option<usize> {
        Some(self.len())
    }
    fn split(self, rows: usize) -> (Self, Self) {
        self.split_at_mut(rows)
    }
    fn raw(self) -> *mut T {
        self.as_mut_ptr()
    }
    unsafe fn one_at(raw: *mut T, k: usize) -> &'a mut T {
        // SAFETY (caller): k is in bounds and taken once, so this borrow is unique.
        unsafe { &mut *raw.add(k) }
    }
}

impl<'a, T: Sync> RowSide for &'a [T] {
    type One = &'a T;
    type Raw = *const T;
    fn rows(&self) -> Option<usize> {
        Some(self.len())
    }
    fn split(self, rows: usize) -> (Self, Self) {
        self.split_at(rows)
    }
    fn raw(self) -> *const T {
        self.as_ptr()
    }
    unsafe fn one_at(raw: *const T, k: usize) -> &'a T {
        // SAFETY (caller): k is in bounds.
        unsafe { &*raw.add(k) }
    }
}

impl RowSide for () {
    type One = ();
    type Raw = ();
    fn rows(&self) -> Option<usize> {
        None
    }
    fn split(self, _: usize) -> (Self, Self) {
        ((), ())
    }
    fn raw(self) {}
    unsafe fn one_at(_: (), _: usize) {}
}

impl<A: RowSide, B: RowSide> RowSide for (A, B) {
    type One = (A::One, B::One);
    type Raw = (A::Raw, B::Raw);
    fn rows(&self) -> Option<usize> {
        match (self.0.rows(), self.1.rows()) {
            (Some(a), Some(b)) if a != b => Some(usize::MAX), // caught by par_rows' check
            (a, b) => a.or(b),
        }
    }
    fn split(self, rows: usize) -> (Self, Self) {
        let (a0, a1) = self.0.split(rows);
        let (b0, b1) = self.1.split(rows);
        ((a0, b0), (a1, b1))
    }
    fn raw(self) -> Self::Raw {
        (self.0.raw(), self.1.raw())
    }
    unsafe fn one_at(raw: Self::Raw, k: usize) -> Self::One {
        // SAFETY: forwarded from the caller.
        unsafe { (A::one_at(raw.0, k), B::one_at(raw.1, k)) }
    }
}

/// What `RowsMut::walk` calls on each row: any `Fn(row index, row, side element)`, or a type
/// whose `row` is marked `#[inline(always)]` (a closure cannot be), so that a kernel compiled
/// for other target features takes the whole row loop inline.
pub trait RowStep<One> {
    fn row(&self, j: usize, row: RowMut<'_>, one: One);
}

impl<One, F: Fn(usize, RowMut<'_>, One)> RowStep<One> for F {
    #[inline(always)]
    fn row(&self, j: usize, row: RowMut<'_>, one: One) {
        self(j, row, one)
    }
}

/// Split a column at slot `cut`; an absent (empty) optional column splits into two empty ones.
#[inline]
fn split_col<T>(v: &mut [T], cut: usize) -> (&mut [T], &mut [T]) {
    if v.is_empty() {
        v.split_at_mut(0)
    } else {
        v.split_at_mut(cut)
    }
}

macro_rules! is_optional {
    () => {
        false
    };
    (optional) => {
        true
    };
}

/// Declares the per-synapse columns (besides `pre`, the input index every arena has) and
/// derives everything that must list them. `name: type = fresh value`; `#[optional]` marks a
/// column that only some modes allocate (empty when absent).
macro_rules! synapse_columns {
    ($( $(#[$opt:ident])? $name:ident : $t:ty = $fresh:expr ),* $(,)?) => {
        #[derive(Debug, Clone, Default)]
        pub struct SynapseArena {
            row_start: Vec<usize>,
            row_len: Vec<u32>,
            pre: Vec<u32>,
            $( $name: Vec<$t>, )*
        }

        /// One row's slots, all of its capacity; `len` says how many are live. Absent optional
        /// columns are empty slices.
        pub struct RowMut<'a> {
            pub pre: &'a mut [u32],
            $( pub $name: &'a mut [$t], )*
            pub len: &'a mut u32,
        }

        /// Every slot of every column, read only (spare slots included: index with `live`).
        pub struct Columns<'a> {
            pub pre: &'a [u32],
            $( pub $name: &'a [$t], )*
        }

        /// Every slot of every column, writable in place (the layout stays as it is).
        pub struct ColumnsMut<'a> {
            pub pre: &'a mut [u32],
            $( pub $name: &'a mut [$t], )*
        }

        /// A contiguous block of rows, split recursively for rayon without allocating.
        pub struct RowsMut<'a, Z> {
            first: usize,
            starts: &'a [usize],
            pre: &'a mut [u32],
            $( $name: &'a mut [$t], )*
            len: &'a mut [u32],
            side: Z,
        }

        impl RowMut<'_> {
            /// A second view of the same row, borrowed from this one. Handing a callee that is
            /// not inlined `&mut row.reborrow()` instead of `&mut row` keeps `row` itself out
            /// of memory: only the copy's address escapes.
            #[inline(always)]
            pub fn reborrow(&mut self) -> RowMut<'_> {
                RowMut {
                    pre: &mut *self.pre,
                    $( $name: &mut *self.$name, )*
                    len: &mut *self.len,
                }
            }

            /// Move slot `from` to slot `to` (compaction and insertion).
            #[inline]
            pub fn move_slot(&mut self, from: usize, to: usize) {
                self.pre[to] = self.pre[from];
                $( if !self.$name.is_empty() { self.$name[to] = self.$name[from]; } )*
            }

            /// A new synapse from input `i` at slot `at`, every column at its fresh value.
            #[inline]
            fn put_fresh(&mut self, at: usize, i: u32) {
                self.pre[at] = i;
                $( if !self.$name.is_empty() { self.$name[at] = $fresh; } )*
            }
        }

        impl<'a, Z: RowSide> RowsMut<'a, Z> {
            /// The rows of this block, as layer row indices.
            #[inline(always)]
            pub fn rows(&self) -> std::ops::Range<usize> {
                self.first..self.first + self.len.len()
            }

            /// Where every row of the layer starts (slot indices; `n_rows + 1` entries).
            #[inline(always)]
            pub fn row_starts(&self) -> &'a [usize] {
                self.starts
            }

            fn split(self, rows: usize) -> (RowsMut<'a, Z>, RowsMut<'a, Z>) {
                let cut = self.starts[self.first + rows] - self.starts[self.first];
                let (pre0, pre1) = self.pre.split_at_mut(cut);
                $( let $name = split_col(self.$name, cut); )*
                let (len0, len1) = self.len.split_at_mut(rows);
                let (side0, side1) = self.side.split(rows);
                (
                    RowsMut {
                        first: self.first,
                        starts: self.starts,
                        pre: pre0,
                        $( $name: $name.0, )*
                        len: len0,
                        side: side0,
                    },
                    RowsMut {
                        first: self.first + rows,
                        starts: self.starts,
                        pre: pre1,
                        $( $name: $name.1, )*
                        len: len1,
                        side: side1,
                    },
                )
            }

            /// Call `f` on every row of the block, in order, walking the rows by index: a row's
            /// view is a few pointer offsets, not a split of every column (which cost more than
            /// the rule itself on short rows).
            ///
            /// Two copies of the loop: with every optional column absent (the usual case) their
            /// views are the constant empty slice, so no row pays for them.
            #[inline(always)]
            pub fn walk<F: RowStep<Z::One>>(self, f: &F) {
                if false $( || (is_optional!($($opt)?) && !self.$name.is_empty()) )* {
                    self.walk_rows::<true, F>(f)
                } else {
                    self.walk_rows::<false, F>(f)
                }
            }

            /// `walk`; `OPTIONAL`: whether any optional column may be present.
            #[inline(always)]
            fn walk_rows<const OPTIONAL: bool, F: RowStep<Z::One>>(self, f: &F) {
                let n = self.len.len();
                let starts = &self.starts[self.first..=self.first + n];
                let base = starts[0];
                // Every column covers exactly the block's slots, or is an absent optional one.
                let slots = starts[n] - base;
                assert!(self.pre.len() == slots $( && (self.$name.len() == slots || (is_optional!($($opt)?) && self.$name.is_empty())) )*);
                let pre = self.pre.as_mut_ptr();
                // An absent optional column's offsets and lengths are masked to 0 (its pointer
                // is the empty Vec's dangling one, valid for empty slices): no branch per
                // column per row. A mandatory column's mask is a constant all-ones.
                $( let $name = (
                    self.$name.as_mut_ptr(),
                    if is_optional!($($opt)?) && (!OPTIONAL || self.$name.is_empty()) { 0 } else { usize::MAX },
                ); )*
                let len = self.len.as_mut_ptr();
                let side = self.side.raw();
                for k in 0..n {
                    let (a, b) = (starts[k] - base, starts[k + 1] - base);
                    assert!(a <= b && b <= slots);
                    // SAFETY: row k's slots `a..b` lie inside the block (checked above) and rows
                    // do not overlap (starts never decrease: checked here, row by row), so each
                    // slice is borrowed once; `len` and `side` have one element per row. A
                    // masked column gives `ptr.add(0)` and length 0.
                    let row = unsafe {
                        RowMut {
                            pre: std::slice::from_raw_parts_mut(pre.add(a), b - a),
                            $( $name: std::slice::from_raw_parts_mut(
                                $name.0.add(a & $name.1),
                                (b - a) & $name.1,
                            ), )*
                            len: &mut *len.add(k),
                        }
                    };
                    f.row(self.first + k, row, unsafe { Z::one_at(side, k) });
                }
            }
        }

        impl SynapseArena {
            /// The declared columns after `pre`, in declaration (and checkpoint) order.
            pub const COLUMNS: &'static [ColumnInfo] = &[
                $( ColumnInfo {
                    name: stringify!($name),
                    kind: <$t as Element>::KIND,
                    width: <$t as Element>::WIDTH,
                    optional: is_optional!($($opt)?),
                }, )*
            ];

            /// Rows as given, every mandatory column at its fresh value, optional ones absent.
            fn fresh(row_start: Vec<usize>, row_len: Vec<u32>, pre: Vec<u32>) -> Self {
                let n = pre.len();
                SynapseArena {
                    row_start,
                    row_len,
                    pre,
                    $( $name: if is_optional!($($opt)?) { Vec::new() } else { vec![$fresh; n] }, )*
                }
            }

            pub fn columns(&self) -> Columns<'_> {
                Columns { pre: &self.pre, $( $name: &self.$name, )* }
            }

            pub fn columns_mut(&mut self) -> ColumnsMut<'_> {
                ColumnsMut { pre: &mut self.pre, $( $name: &mut self.$name, )* }
            }

            /// Allocate (at fresh values) or drop an optional column, by name.
            pub fn set_present(&mut self, name: &str, present: bool) -> Result<(), String> {
                let n = self.pre.len();
                $(
                    if name == stringify!($name) {
                        if !is_optional!($($opt)?) {
                            return Err(format!("column {name} is not optional"));
                        }
                        match (present, self.$name.is_empty() && n > 0) {
                            (true, true) => self.$name = vec![$fresh; n],
                            (false, _) => self.$name = Vec::new(),
                            _ => {}
                        }
                        return Ok(());
                    }
                )*
                Err(format!("no synapse column named {name}"))
            }

            /// Every column including `pre`, all slots, flat, in checkpoint order.
            pub fn flat_columns(&self) -> Vec<(&'static str, Flat<'_>)> {
                vec![("pre", Flat::U32(&self.pre)), $( (stringify!($name), <$t as Element>::flat(&self.$name)), )*]
            }

            /// Every present column including `pre`, live slots only, row by row (numpy export).
            pub fn live_columns(&self) -> Vec<(&'static str, FlatVec)> {
                let idx = self.live_indices();
                fn pick<T: Element>(v: &[T], idx: &[usize]) -> FlatVec {
                    let live: Vec<T> = if v.is_empty() { Vec::new() } else { idx.iter().map(|&k| v[k]).collect() };
                    match T::flat(&live) {
                        Flat::U32(s) => FlatVec::U32(s.to_vec()),
                        Flat::F32(s) => FlatVec::F32(s.to_vec()),
                    }
                }
                let mut out = vec![("pre", pick(&self.pre, &idx))];
                $(
                    // An absent optional column is left out.
                    if !(is_optional!($($opt)?) && self.$name.is_empty()) {
                        out.push((stringify!($name), pick(&self.$name, &idx)));
                    }
                )*
                out
            }

            /// An arena from stored rows and columns, checked (`check`) before it is returned.
            /// `column(info)` gives a declared column's flat values, or None if it is absent.
            pub fn from_raw(
                row_start: Vec<usize>,
                row_len: Vec<u32>,
                pre: Vec<u32>,
                n_in: usize,
                mut column: impl FnMut(&ColumnInfo) -> Result<Option<FlatVec>, String>,
            ) -> Result<Self, String> {
                let mut infos = Self::COLUMNS.iter();
                let arena = SynapseArena {
                    row_start,
                    row_len,
                    pre,
                    $( $name: {
                        let info = infos.next().expect("one info per column");
                        match column(info)? {
                            Some(flat) => <$t as Element>::from_flat(flat)
                                .ok_or_else(|| format!("column {} has the wrong element type or length", info.name))?,
                            None if info.optional => Vec::new(),
                            None => return Err(format!("column {} is missing", info.name)),
                        }
                    }, )*
                };
                arena.check(n_in)?;
                Ok(arena)
            }

            /// Slot counts of every column agree (absent optional columns aside).
            fn check_columns(&self) -> Result<(), String> {
                let total = self.pre.len();
                $(
                    let n = self.$name.len();
                    if n != total && !(is_optional!($($opt)?) && n == 0) {
                        return Err(format!(
                            "column {} has {n} slots, expected {total}", stringify!($name)
                        ));
                    }
                )*
                Ok(())
            }

            /// Give every row `max(capacity[j], live)` slots (growing or shrinking it), keeping
            /// live synapses in their rows; done in place, column by column, so the peak extra
            /// memory is one column's growth (see `relayout_column`).
            pub fn relayout(&mut self, capacity: &[usize]) {
                let n_rows = self.n_rows();
                let mut start = Vec::with_capacity(n_rows + 1);
                start.push(0usize);
                for (j, &cap) in capacity.iter().enumerate().take(n_rows) {
                    let c = cap.max(self.row_len[j] as usize);
                    start.push(start[j] + c);
                }
                let (old, len) = (&self.row_start, &self.row_len);
                relayout_column(&mut self.pre, old, &start, len, 0);
                $(
                    // An absent optional column stays absent.
                    if !(is_optional!($($opt)?) && self.$name.is_empty()) {
                        relayout_column(&mut self.$name, old, &start, len, $fresh);
                    }
                )*
                self.row_start = start;
            }

            /// Equality of the live synapses, bit for bit (spare slots excluded).
            pub fn same_live(&self, o: &SynapseArena) -> bool {
                fn eq<T: Element>(x: &[T], y: &[T], ia: &[usize], ib: &[usize]) -> bool {
                    if x.is_empty() || y.is_empty() {
                        return x.is_empty() == y.is_empty();
                    }
                    ia.iter().zip(ib).all(|(&p, &q)| T::same(&x[p], &y[q]))
                }
                if self.row_len != o.row_len {
                    return false;
                }
                let (ia, ib) = (self.live_indices(), o.live_indices());
                eq(&self.pre, &o.pre, &ia, &ib) $( && eq(&self.$name, &o.$name, &ia, &ib) )*
            }

            /// Run `f` on every row in parallel; each call sees only its own row and that row's
            /// element of `side` (per-row state kept outside the arena: a slice, a pair of
            /// slices, or `()` for none).
            pub fn par_rows<Z, F>(&mut self, side: Z, f: F)
            where
                Z: RowSide,
                F: Fn(usize, RowMut<'_>, Z::One) + Sync,
            {
                self.par_blocks(side, |block| block.walk(&f));
            }

            /// Run `f` on blocks of consecutive rows in parallel (the blocks `par_rows` walks):
            /// `f` walks its block with `RowsMut::walk`, so a kernel compiled for other target
            /// features can take the whole row loop inline, not one call per row.
            pub fn par_blocks<Z, F>(&mut self, side: Z, f: F)
            where
                Z: RowSide,
                F: Fn(RowsMut<'_, Z>) + Sync,
            {
                if let Some(n) = side.rows() {
                    assert_eq!(n, self.n_rows(), "par_rows: side data must cover every row");
                }
                let rows = RowsMut {
                    first: 0,
                    starts: &self.row_start,
                    pre: &mut self.pre,
                    $( $name: &mut self.$name, )*
                    len: &mut self.row_len,
                    side,
                };
                drive(rows, &f);
            }
        }
    };
}

synapse_columns! {
    weight: f32 = 0.0,
    short_trail: f32 = 0.0,
    long_trail: f32 = 0.0,
    consolidation: f32 = 0.0,
    anchor: f32 = 0.0,
    // Cascade consolidation levels (src/cascade.rs), shallowest first; only in that mode.
    #[optional] cascade_1: f32 = 0.0,
    #[optional] cascade_2: f32 = 0.0,
    #[optional] cascade_3: f32 = 0.0,
    #[optional] cascade_4: f32 = 0.0,
}

impl RowMut<'_> {
    #[inline]
    pub fn live(&self) -> usize {
        *self.len as usize
    }

    /// Insert a fresh synapse from input `i` keeping the row sorted; the caller checked capacity.
    pub fn insert_fresh(&mut self, i: u32) {
        let n = self.live();
        let at = self.pre[..n].partition_point(|&p| p < i);
        let mut k = n;
        while k > at {
            self.move_slot(k - 1, k);
            k -= 1;
        }
        self.put_fresh(at, i);
        *self.len += 1;
    }
}

impl<Z: RowSide> RowsMut<'_, Z> {
    fn n_rows(&self) -> usize {
        self.len.len()
    }
}

/// Rows per rayon task: big enough to amortise scheduling, small enough to balance 16 cores.
const GRAIN_SLOTS: usize = 4096;

fn drive<Z: RowSide, F: Fn(RowsMut<'_, Z>) + Sync>(rows: RowsMut<'_, Z>, f: &F) {
    let n = rows.n_rows();
    let slots = rows.starts[rows.first + n] - rows.starts[rows.first];
    if n <= 1 || slots <= GRAIN_SLOTS {
        f(rows);
    } else {
        let (a, b) = rows.split(n / 2);
        rayon::join(|| drive(a, f), || drive(b, f));
    }
}

impl SynapseArena {
    /// Fresh arena from a neighbourhood, rows packed without spare slots; weights drawn by `init`
    /// in storage order, each synapse anchored at its initial weight.
    pub fn from_neighbourhood(nb: &Neighbourhood, mut init: impl FnMut() -> f32) -> Self {
        let row_len = (0..nb.n_rows())
            .map(|j| (nb.start[j + 1] - nb.start[j]) as u32)
            .collect();
        let mut a = Self::fresh(nb.start.clone(), row_len, nb.pre.clone());
        a.weight.iter_mut().for_each(|w| *w = init());
        a.anchor.copy_from_slice(&a.weight);
        a
    }

    pub fn n_rows(&self) -> usize {
        self.row_len.len()
    }

    /// Slots of row `j`, live and spare.
    pub fn capacity(&self, j: usize) -> usize {
        self.row_start[j + 1] - self.row_start[j]
    }

    /// Slots of all rows, live and spare.
    pub fn n_slots(&self) -> usize {
        self.pre.len()
    }

    /// Live synapses of row `j`.
    #[inline]
    pub fn row_len(&self, j: usize) -> usize {
        self.row_len[j] as usize
    }

    /// First slot and live length of rows `rows` (row `j` lives in `start..start + len`).
    #[inline]
    pub fn row_spans(&self, rows: std::ops::Range<usize>) -> (&[usize], &[u32]) {
        (&self.row_start[rows.clone()], &self.row_len[rows])
    }

    /// Live slot range of row `j`.
    #[inline]
    pub fn live(&self, j: usize) -> std::ops::Range<usize> {
        self.row_start[j]..self.row_start[j] + self.row_len[j] as usize
    }

    pub fn n_live(&self) -> usize {
        self.row_len.iter().map(|&l| l as usize).sum()
    }

    /// Where each row starts, `n_rows + 1` entries (checkpoints).
    pub fn row_starts(&self) -> &[usize] {
        &self.row_start
    }

    /// Live synapses per row (checkpoints).
    pub fn row_lens(&self) -> &[u32] {
        &self.row_len
    }

    /// Input index of every slot.
    #[inline]
    pub fn pre(&self) -> &[u32] {
        &self.pre
    }

    /// Weight of every slot.
    #[inline]
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }

    /// Live slots in row order, for inspection and checkpoints.
    pub fn live_indices(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.n_live());
        for j in 0..self.n_rows() {
            out.extend(self.live(j));
        }
        out
    }

    /// Checks the arena's own invariants; used by tests and by the checkpoint loader.
    pub fn check(&self, n_in: usize) -> Result<(), String> {
        let n_rows = self.n_rows();
        if self.row_start.len() != n_rows + 1 || self.row_start[0] != 0 {
            return Err("row_start must have n_out + 1 entries starting at 0".into());
        }
        self.check_columns()
            .map_err(|e| format!("synapse arrays differ in length: {e}"))?;
        let total = self.pre.len();
        if self.row_start[n_rows] != total {
            return Err("row_start does not end at the number of slots".into());
        }
        for j in 0..n_rows {
            if self.row_start[j + 1] < self.row_start[j] {
                return Err(format!("row_start decreases at row {j}"));
            }
            if self.row_len[j] as usize > self.capacity(j) {
                return Err(format!("row {j} has more live synapses than slots"));
            }
            let row = &self.pre[self.live(j)];
            if row.iter().any(|&i| i as usize >= n_in) {
                return Err(format!("row {j} reads an input index >= n_in = {n_in}"));
            }
            if row.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!(
                    "row {j} is not strictly sorted by input (duplicate synapse?)"
                ));
            }
        }
        Ok(())
    }
}

/// Re-lay one column in place from rows at `old` starts to rows at `new` starts (`len` live
/// slots each, capacities from the start arrays), growing the column first or shrinking it
/// last, so memory never holds two copies of the arena: the peak is one column's realloc.
/// Spare slots are set to `fresh`, as a freshly allocated column would be.
fn relayout_column<T: Copy>(v: &mut Vec<T>, old: &[usize], new: &[usize], len: &[u32], fresh: T) {
    let n_rows = len.len();
    let total = new[n_rows];
    if total > v.len() {
        v.resize(total, fresh);
    }
    // Rows moving left go in increasing order and rows moving right in decreasing order; either
    // way a row's destination holds no live slot that has not moved yet.
    for j in 0..n_rows {
        if new[j] < old[j] {
            v.copy_within(old[j]..old[j] + len[j] as usize, new[j]);
        }
    }
    for j in (0..n_rows).rev() {
        if new[j] > old[j] {
            v.copy_within(old[j]..old[j] + len[j] as usize, new[j]);
        }
    }
    for j in 0..n_rows {
        v[new[j] + len[j] as usize..new[j + 1]].fill(fresh);
    }
    if total < v.len() {
        v.truncate(total);
        v.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> SynapseArena {
        let nb = Neighbourhood {
            start: vec![0, 2, 2, 5],
            pre: vec![0, 3, 1, 2, 4],
        };
        let mut k = 0.0;
        SynapseArena::from_neighbourhood(&nb, || {
            k += 1.0;
            k
        })
    }

    #[test]
    fn par_rows_sees_each_row_once() {
        let mut a = tiny();
        let mut bias = vec![0.0; 3];
        let mut count = vec![0; 3];
        a.par_rows((&mut bias[..], &mut count[..]), |j, row, (b, c)| {
            for w in row.weight.iter_mut() {
                *w += 100.0 * j as f32;
            }
            *b = j as f32;
            *c = row.live() as u32;
        });
        assert_eq!(a.weight, vec![1.0, 2.0, 203.0, 204.0, 205.0]);
        assert_eq!(bias, vec![0.0, 1.0, 2.0]);
        assert_eq!(count, vec![2, 0, 3]);
        a.check(5).unwrap();
    }

    #[test]
    #[should_panic(expected = "cover every row")]
    fn par_rows_refuses_short_side() {
        let mut a = tiny();
        let mut count = [0u32; 2];
        a.par_rows(&mut count[..], |_, _, _| {});
    }

    #[test]
    fn relayout_keeps_rows_and_adds_slots() {
        let mut a = tiny();
        a.relayout(&[4, 2, 6]);
        assert_eq!(a.row_start, vec![0, 4, 6, 12]);
        assert_eq!(&a.pre[a.live(0)], &[0, 3]);
        assert_eq!(&a.pre[a.live(2)], &[1, 2, 4]);
        assert_eq!(&a.weight[a.live(2)], &[3.0, 4.0, 5.0]);
        assert_eq!(&a.anchor[a.live(2)], &[3.0, 4.0, 5.0]);
        a.check(5).unwrap();
        assert!(a.same_live(&tiny()));
    }

    #[test]
    fn relayout_in_place_moves_rows_both_ways_and_shrinks() {
        let mut a = tiny();
        a.relayout(&[4, 2, 6]);
        a.par_rows((), |_, row, ()| {
            for s in row.short_trail.iter_mut() {
                *s = 7.0; // spare slots too: the re-layout must reset them
            }
        });
        // Row 0 shrinks to its 2 live slots (moves nothing), row 1 grows, row 2 moves left.
        a.relayout(&[0, 3, 3]);
        assert_eq!(a.row_start, vec![0, 2, 5, 8]);
        assert_eq!(a.pre.len(), 8);
        assert_eq!(&a.pre[a.live(0)], &[0, 3]);
        assert_eq!(&a.pre[a.live(2)], &[1, 2, 4]);
        assert_eq!(&a.weight[a.live(2)], &[3.0, 4.0, 5.0]);
        assert_eq!(&a.short_trail[2..5], &[0.0, 0.0, 0.0]);
        // ... and back to more room: rows move right.
        a.relayout(&[5, 1, 4]);
        assert_eq!(a.row_start, vec![0, 5, 6, 10]);
        assert_eq!(&a.pre[a.live(0)], &[0, 3]);
        assert_eq!(&a.weight[a.live(0)], &[1.0, 2.0]);
        assert_eq!(&a.pre[a.live(2)], &[1, 2, 4]);
        assert_eq!(&a.weight[a.live(2)], &[3.0, 4.0, 5.0]);
        assert_eq!(a.weight[9], 0.0);
        a.check(5).unwrap();
    }

    #[test]
    fn insert_keeps_row_sorted() {
        let mut a = tiny();
        a.relayout(&[4, 2, 6]);
        a.par_rows((), |j, mut row, ()| {
            if j == 2 {
                row.insert_fresh(3);
                row.insert_fresh(0);
            }
        });
        assert_eq!(&a.pre[a.live(2)], &[0, 1, 2, 3, 4]);
        assert_eq!(&a.weight[a.live(2)], &[0.0, 3.0, 4.0, 0.0, 5.0]);
        assert_eq!(&a.anchor[a.live(2)], &[0.0, 3.0, 4.0, 0.0, 5.0]);
        a.check(5).unwrap();
        assert!(!a.same_live(&tiny()));
    }

    #[test]
    fn check_rejects_bad_index_and_duplicates() {
        let mut a = tiny();
        a.pre[1] = 9;
        assert!(a.check(5).is_err());
        let mut b = tiny();
        b.pre[3] = 1;
        assert!(b.check(5).is_err());
        let mut c = tiny();
        c.long_trail.pop();
        assert!(c.check(5).unwrap_err().contains("long_trail"));
    }

    #[test]
    fn from_raw_round_trips_and_checks() {
        let a = tiny();
        let flat: Vec<(&str, FlatVec)> = a
            .flat_columns()
            .into_iter()
            .map(|(n, f)| match f {
                Flat::U32(s) => (n, FlatVec::U32(s.to_vec())),
                Flat::F32(s) => (n, FlatVec::F32(s.to_vec())),
            })
            .collect();
        let mut store: std::collections::HashMap<&str, FlatVec> = flat.into_iter().collect();
        let pre = match store.remove("pre") {
            Some(FlatVec::U32(p)) => p,
            _ => unreachable!(),
        };
        let b = SynapseArena::from_raw(
            a.row_start.clone(),
            a.row_len.clone(),
            pre.clone(),
            5,
            |info| Ok(store.remove(info.name)),
        )
        .unwrap();
        assert!(a.same_live(&b));
        let missing =
            SynapseArena::from_raw(a.row_start.clone(), a.row_len.clone(), pre, 5, |_| Ok(None));
        assert!(missing.unwrap_err().contains("weight"));
        let short = SynapseArena::from_raw(
            vec![0, 2, 2, 5],
            vec![2, 0, 3],
            vec![0, 3, 1, 2, 9],
            5,
            |info| Ok(Some(FlatVec::F32(vec![0.0; 5 * info.width]))),
        );
        assert!(short.unwrap_err().contains("input index"));
    }
}
