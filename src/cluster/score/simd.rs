//! The only `unsafe` code of the clustering: running a scoring kernel compiled for AVX2 when
//! the CPU has it, and cache prefetch hints.
//!
//! A kernel ([`Kernel`]) is a chunk of scoring work whose `run` is `#[inline(always)]`, so
//! [`dispatch`] compiles it twice: once portable and once inside a function with AVX2
//! enabled. Both builds do the same operations in the same order (no fused multiply-add), so
//! they give the same bits; the module tests check it.

/// A chunk of scoring work to compile for AVX2 as well as portably. Implementations mark
/// `run` `#[inline(always)]`, so it is compiled into each caller.
pub(super) trait Kernel {
    type Output;
    fn run(self) -> Self::Output;
}

/// Runs `kernel` compiled for AVX2 when the CPU has it, portably otherwise.
#[inline(always)]
pub(super) fn dispatch<K: Kernel>(kernel: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { run_avx2(kernel) };
    }
    kernel.run()
}

/// `kernel` compiled for AVX2: the same operations in the same order, on 8 lanes at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn run_avx2<K: Kernel>(kernel: K) -> K::Output {
    kernel.run()
}

/// `kernel` compiled for AVX2, or `None` when the CPU does not have it (for tests that
/// compare the two builds).
#[cfg(test)]
pub(super) fn avx2<K: Kernel>(kernel: K) -> Option<K::Output> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return Some(unsafe { run_avx2(kernel) });
    }
    let _ = kernel;
    None
}

/// `kernel` compiled portably (for tests that compare the two builds).
#[cfg(test)]
pub(super) fn portable<K: Kernel>(kernel: K) -> K::Output {
    kernel.run()
}

/// Asks the CPU to start loading the cache line that holds `value`.
#[inline(always)]
pub(in crate::cluster) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint and never faults; the pointer comes from a reference.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
