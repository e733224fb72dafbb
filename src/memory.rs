//! Memory handed back to the system after a burst.
//!
//! glibc's malloc keeps what it frees: a freed chunk below the mmap threshold
//! stays in its arena, and the threshold itself rises (up to 32 MiB) each time
//! a large mapped chunk is freed, so after one burst of 1 MiB messages every
//! later one comes from the heap too and stays there. Measured here (README,
//! "Memory bound"): 100 connections holding 1 MiB routing ids left RSS at
//! hundreds of MB after they closed. A fixed threshold keeps large buffers
//! (libzmq's messages, routing ids, snapshots) mapped, so freeing them unmaps
//! them at once; fewer arenas and a periodic trim return the small change.

use std::time::{Duration, Instant};

/// Allocations from this size up are mapped on their own and unmapped when freed.
const MMAP_THRESHOLD: i32 = 64 * 1024;
/// Free memory at the top of a heap beyond this is returned at once.
const TRIM_THRESHOLD: i32 = 1 << 20;
/// Arenas for all threads (glibc's default is 8 per core).
const ARENA_MAX: i32 = 2;
/// How often the heaps are trimmed.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Sets the allocator's policy; call before the threads start.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes parameters of glibc's allocator; it is
    // called before any other thread of the service allocates.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
    }
}

/// Returns free memory of every arena to the system, at most once per
/// [`TRIM_EVERY`]; it costs tens of microseconds on the service's heaps.
pub struct Trimmer {
    last: Instant,
}

impl Default for Trimmer {
    fn default() -> Self {
        Trimmer {
            last: Instant::now(),
        }
    }
}

impl Trimmer {
    pub fn maybe_trim(&mut self) {
        if self.last.elapsed() < TRIM_EVERY {
            return;
        }
        self.last = Instant::now();
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim is thread-safe; it only releases free memory.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
