//! Running out of memory: an allocation that fails prints what happened and what to do, and
//! the process exits 2 (environmental: retry with more memory) rather than aborting with 134.
//!
//! The message is written with `write(2)` from a fixed buffer, since nothing can be allocated
//! at that point; locks and staging are left to the next run, which takes over expired leases
//! and removes the staging of dead runs.

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, exiting with a message when an allocation fails.
pub struct ExitOnOom;

// SAFETY: every call is forwarded to the system allocator with the same arguments; only a
// null result is acted on, and then the process ends.
unsafe impl GlobalAlloc for ExitOnOom {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is forwarded unchanged.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is forwarded unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            out_of_memory(new_size);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Writes the out-of-memory message for an allocation of `size` bytes and exits 2.
fn out_of_memory(size: usize) -> ! {
    let mut buffer = [0u8; 512];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        let take = bytes.len().min(buffer.len() - n);
        buffer[n..n + take].copy_from_slice(&bytes[..take]);
        n += take;
    };
    put(b"error: out of memory: an allocation of ");
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut rest = size;
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    put(&digits[i..]);
    put(
        b" bytes failed\nhint: give the job more memory, or use less: a smaller `fit.sample`, \
          fewer `--threads`, or fewer partitions per run (`--partition`); nothing half-written \
          was committed\n",
    );
    // SAFETY: write(2) on the standard error descriptor with a buffer of `n` valid bytes, then
    // _exit(2), which ends the process without running anything that could allocate.
    unsafe {
        libc::write(2, buffer.as_ptr().cast(), n);
        libc::_exit(2);
    }
}
