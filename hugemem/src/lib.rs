//! Fixed-capacity arrays on 2 MB hugepages, with the heap as the fallback.
//!
//! Big tables that the fast path reads at random (the dataplane's flow table: 100+ MB per
//! worker) pay a TLB miss on most accesses when they sit on 4 KB pages — and under a
//! hypervisor a TLB miss is a two-level page walk. On 2 MB pages a 200 MB table needs 100 TLB
//! entries, which the second-level TLB holds. [`FixedVec::on_hugepages`] maps the memory from
//! the kernel's hugepage pool (`mmap(MAP_HUGETLB | MAP_HUGE_2MB)`, the pool that
//! `/proc/sys/vm/nr_hugepages` sizes and DPDK also draws from), populated up front so the fast
//! path never takes a page fault; [`FixedVec::on_heap`] is the ordinary allocator, for tests
//! and machines without a pool. Both give the same type, so the code that uses the array does
//! not care where it lives ([`FixedVec::placement`] tells).
//!
//! The mapping is anonymous and private: nothing is left in hugetlbfs, and the pages return
//! to the pool when the array is dropped or the process ends.
//!
//! This crate is a libc edge: it is the only place with `unsafe` for this, and every block
//! says why it is sound. Elements are `Copy`, so nothing needs dropping.
#![allow(unsafe_code)]

use std::alloc::Layout;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use thiserror::Error;

/// The page size [`FixedVec::on_hugepages`] maps.
pub const HUGEPAGE_SIZE: usize = 2 << 20;

/// `MAP_HUGE_2MB` from mmap(2): log2(2 MB) = 21 in the bits from `MAP_HUGE_SHIFT` (26).
const MAP_HUGE_2MB: libc::c_int = 21 << 26;

/// Where the memory of a [`FixedVec`] lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Placement {
    /// The global allocator (normal 4 KB pages, unless the kernel's transparent hugepages
    /// step in).
    Heap,
    /// 2 MB pages from the hugepage pool.
    Hugepages,
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Placement::Heap => "heap",
            Placement::Hugepages => "2 MB hugepages",
        })
    }
}

/// Why [`FixedVec::on_hugepages`] could not map the array.
#[derive(Debug, Error)]
pub enum HugeError {
    /// `capacity × element size` does not fit in the address space.
    #[error("{capacity} elements of {size} bytes are too many to map")]
    TooLarge {
        /// Elements asked for.
        capacity: usize,
        /// Bytes per element.
        size: usize,
    },
    /// The element type needs a stricter alignment than a hugepage gives.
    #[error("alignment {align} is above the hugepage size")]
    Alignment {
        /// The element type's alignment.
        align: usize,
    },
    /// The kernel refused the mapping: not enough free pages in the 2 MB pool (`ENOMEM`),
    /// no pool configured, or a limit (`EPERM`, `EINVAL` on kernels without hugetlb).
    #[error("mapping {bytes} bytes of 2 MB hugepages: {source}")]
    Map {
        /// Bytes asked for (a multiple of [`HUGEPAGE_SIZE`]).
        bytes: usize,
        /// The error `mmap` returned.
        #[source]
        source: std::io::Error,
    },
}

/// What a [`FixedVec`] has to give back when dropped.
#[derive(Clone, Copy, Debug)]
enum Memory {
    /// Nothing allocated (zero bytes).
    None,
    /// From the global allocator with this layout.
    Heap(Layout),
    /// An anonymous hugetlb mapping of this many bytes.
    Mapped(usize),
}

/// A vector with a capacity fixed at construction: `push` never reallocates (it hands the
/// element back when full), so references into it stay valid and the fast path never
/// allocates. Dereferences to the `len` elements pushed so far.
pub struct FixedVec<X: Copy> {
    ptr: NonNull<X>,
    len: usize,
    cap: usize,
    mem: Memory,
}

// SAFETY: a FixedVec owns its elements exclusively (like Vec<X>); moving it to another thread
// moves that ownership, which is sound when X itself may move between threads.
unsafe impl<X: Copy + Send> Send for FixedVec<X> {}
// SAFETY: shared access only hands out `&[X]`, which is sound to share when X is Sync.
unsafe impl<X: Copy + Sync> Sync for FixedVec<X> {}

impl<X: Copy> FixedVec<X> {
    /// Room for `capacity` elements from the global allocator. Like `Vec::with_capacity`, it
    /// aborts if the allocator has no memory.
    pub fn on_heap(capacity: usize) -> FixedVec<X> {
        let Ok(layout) = Layout::array::<X>(capacity) else {
            panic!("FixedVec: {capacity} elements of {} bytes overflow", std::mem::size_of::<X>());
        };
        if layout.size() == 0 {
            return FixedVec { ptr: NonNull::dangling(), len: 0, cap: capacity, mem: Memory::None };
        }
        // SAFETY: the layout has a non-zero size (checked above).
        let p = unsafe { std::alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(p.cast::<X>()) else { std::alloc::handle_alloc_error(layout) };
        FixedVec { ptr, len: 0, cap: capacity, mem: Memory::Heap(layout) }
    }

    /// Room for `capacity` elements on 2 MB hugepages from the kernel's pool, rounded up to
    /// whole pages, reserved and faulted in now (`MAP_POPULATE`): afterwards no access can
    /// fault or fail for want of a page.
    ///
    /// # Errors
    ///
    /// [`HugeError::Map`] when the pool has too few free pages (or none is configured);
    /// [`HugeError::TooLarge`] / [`HugeError::Alignment`] for impossible element types.
    pub fn on_hugepages(capacity: usize) -> Result<FixedVec<X>, HugeError> {
        let size = std::mem::size_of::<X>();
        let align = std::mem::align_of::<X>();
        if align > HUGEPAGE_SIZE {
            return Err(HugeError::Alignment { align });
        }
        let too_large = HugeError::TooLarge { capacity, size };
        let bytes = capacity.checked_mul(size).ok_or(too_large)?;
        if bytes == 0 {
            return Ok(FixedVec { ptr: NonNull::dangling(), len: 0, cap: capacity, mem: Memory::None });
        }
        let bytes = bytes
            .checked_next_multiple_of(HUGEPAGE_SIZE)
            .filter(|b| *b <= isize::MAX as usize)
            .ok_or(HugeError::TooLarge { capacity, size })?;
        // SAFETY: a fresh anonymous private mapping at an address of the kernel's choosing
        // (no fixed address, no file): it cannot alias any memory this process uses. The
        // arguments are plain integers; the result is checked against MAP_FAILED below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB | MAP_HUGE_2MB | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(HugeError::Map { bytes, source: std::io::Error::last_os_error() });
        }
        // A successful mmap never returns null (we did not ask for address 0); 2 MB alignment
        // covers X's alignment (checked above).
        let Some(ptr) = NonNull::new(p.cast::<X>()) else {
            return Err(HugeError::Map { bytes, source: std::io::Error::other("mmap returned null") });
        };
        Ok(FixedVec { ptr, len: 0, cap: capacity, mem: Memory::Mapped(bytes) })
    }

    /// Where the memory lives.
    pub fn placement(&self) -> Placement {
        match self.mem {
            Memory::Mapped(_) => Placement::Hugepages,
            Memory::None | Memory::Heap(_) => Placement::Heap,
        }
    }

    /// Bytes reserved (whole hugepages when mapped).
    pub fn bytes(&self) -> usize {
        match self.mem {
            Memory::None => 0,
            Memory::Heap(l) => l.size(),
            Memory::Mapped(b) => b,
        }
    }

    /// The most elements it holds.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Elements pushed so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `x`, or hands it back when the vector is at capacity.
    #[inline]
    pub fn push(&mut self, x: X) -> Result<(), X> {
        if self.len == self.cap {
            return Err(x);
        }
        // SAFETY: len < cap, so the slot is inside the allocation (or X is zero-sized and the
        // dangling pointer is valid for it); writing a Copy value needs no drop of the old bits.
        unsafe { self.ptr.as_ptr().add(self.len).write(x) };
        self.len += 1;
        Ok(())
    }

    /// Pushes copies of `x` until the vector is full.
    pub fn fill(&mut self, x: X) {
        while self.push(x).is_ok() {}
    }

    /// Forgets every element (they are `Copy`: nothing to drop); the memory stays.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl<X: Copy> Deref for FixedVec<X> {
    type Target = [X];

    #[inline]
    fn deref(&self) -> &[X] {
        // SAFETY: the first `len` slots were written by `push` and the allocation outlives
        // the borrow of self; the pointer is non-null and aligned (dangling only for len 0 or
        // zero-sized X).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<X: Copy> DerefMut for FixedVec<X> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [X] {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<X: Copy> Drop for FixedVec<X> {
    fn drop(&mut self) {
        match self.mem {
            Memory::None => {}
            // SAFETY: allocated by `on_heap` with exactly this layout, freed once.
            Memory::Heap(layout) => unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), layout) },
            Memory::Mapped(bytes) => {
                // SAFETY: the whole mapping made by `on_hugepages`, unmapped once; no borrow of
                // it can outlive self.
                let _ = unsafe { libc::munmap(self.ptr.as_ptr().cast(), bytes) };
            }
        }
    }
}

impl<X: Copy + fmt::Debug> fmt::Debug for FixedVec<X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedVec")
            .field("len", &self.len)
            .field("capacity", &self.cap)
            .field("placement", &self.placement())
            .finish_non_exhaustive()
    }
}

/// Starts bringing the cache line holding `x` into all cache levels, without waiting for it
/// and without any effect a program can observe (a hint: it cannot fault, even on memory that
/// is not mapped, and changes no memory). Lets a fast path overlap the cache misses of many
/// independent lookups — hash-table buckets of a whole burst, say — where plain loads would
/// stall the CPU's retirement one after another.
#[inline(always)]
pub fn prefetch<X>(x: &X) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is in SSE, part of every x86_64 CPU (the target's baseline); the
    // instruction only hints the cache: no fault, no read the program can see, no write.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((x as *const X).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C, align(64))]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Line([u64; 8]);

    fn exercise(mut v: FixedVec<Line>, cap: usize) {
        assert_eq!((v.len(), v.capacity()), (0, cap));
        for i in 0..cap {
            v.push(Line([i as u64; 8])).unwrap();
        }
        assert_eq!(v.push(Line([0; 8])), Err(Line([0; 8])));
        assert_eq!(v.len(), cap);
        assert_eq!(v.as_ptr() as usize % 64, 0);
        v[3].0[1] = 99;
        assert_eq!(v[3].0, [3, 99, 3, 3, 3, 3, 3, 3]);
        assert_eq!(v[cap - 1].0[7], cap as u64 - 1);
        v.clear();
        assert!(v.is_empty());
        v.fill(Line([7; 8]));
        assert!(v.iter().all(|l| l.0 == [7; 8]));
    }

    #[test]
    fn heap_vector_holds_capacity_and_no_more() {
        let v = FixedVec::<Line>::on_heap(1000);
        assert_eq!(v.placement(), Placement::Heap);
        assert_eq!(v.bytes(), 64_000);
        exercise(v, 1000);
    }

    #[test]
    fn zero_sizes_allocate_nothing() {
        let mut v = FixedVec::<Line>::on_heap(0);
        assert_eq!((v.bytes(), v.push(Line([1; 8])).is_err()), (0, true));
        let mut z = FixedVec::<()>::on_heap(3);
        z.fill(());
        assert_eq!(z.len(), 3);
        assert_eq!(FixedVec::<Line>::on_hugepages(0).unwrap().bytes(), 0);
    }

    #[test]
    fn impossible_sizes_are_errors() {
        assert!(matches!(FixedVec::<Line>::on_hugepages(usize::MAX / 8), Err(HugeError::TooLarge { .. })));
    }

    /// Maps one hugepage when the pool has one; a machine without a pool gets the error the
    /// callers fall back on.
    #[test]
    fn hugepage_vector_or_a_clear_error() {
        match FixedVec::<Line>::on_hugepages(40_000) {
            Ok(v) => {
                assert_eq!(v.placement(), Placement::Hugepages);
                assert_eq!(v.bytes(), 2 * HUGEPAGE_SIZE);
                assert_eq!(v.as_ptr() as usize % HUGEPAGE_SIZE, 0);
                exercise(v, 40_000);
            }
            Err(e @ HugeError::Map { .. }) => eprintln!("no hugepages here ({e}); heap fallback applies"),
            Err(e) => panic!("{e}"),
        }
    }
}
