//! The process' memory as INFO memory, MEMORY STATS and /metrics show it:
//! the allocator's own figures (mimalloc's committed bytes — the binary
//! allocates through mimalloc) and the kernel's resident set.

use std::ffi::{c_char, c_void, CStr};
use std::sync::OnceLock;

/// One reading.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    /// Bytes the allocator holds for the program (`used_memory`).
    pub allocated: u64,
    pub peak_allocated: u64,
    /// Resident set size, from /proc (`used_memory_rss`).
    pub rss: u64,
    /// `allocated` just after start (`used_memory_startup`).
    pub startup: u64,
}

/// Remembers the start-up figure; call once when the server starts.
pub(crate) fn mark_startup() {
    STARTUP.get_or_init(|| read_allocator().0);
}

static STARTUP: OnceLock<u64> = OnceLock::new();

/// (committed, peak committed) bytes from mimalloc.
fn read_allocator() -> (u64, u64) {
    let (mut elapsed, mut user, mut system, mut rss, mut peak_rss) = (0, 0, 0, 0, 0);
    let (mut commit, mut peak_commit, mut faults) = (0, 0, 0);
    // SAFETY: every pointer is to a live local; mimalloc only writes them.
    unsafe {
        libmimalloc_sys::mi_process_info(
            &mut elapsed,
            &mut user,
            &mut system,
            &mut rss,
            &mut peak_rss,
            &mut commit,
            &mut peak_commit,
            &mut faults,
        );
    }
    (commit as u64, peak_commit as u64)
}

/// (current, peak) resident bytes from /proc/self/status (0 elsewhere).
fn read_rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

pub(crate) fn read() -> Memory {
    let (mut allocated, mut peak_allocated) = read_allocator();
    let (rss, peak_rss) = read_rss();
    // A build that does not allocate through mimalloc (the test harness):
    // the resident set is the best figure there is.
    if allocated == 0 {
        (allocated, peak_allocated) = (rss, peak_rss);
    }
    Memory { allocated, peak_allocated, rss, startup: STARTUP.get().copied().unwrap_or(allocated) }
}

/// mimalloc's statistics text (MEMORY MALLOC-STATS).
pub(crate) fn allocator_report() -> String {
    unsafe extern "C" fn collect(msg: *const c_char, arg: *mut c_void) {
        // SAFETY: `arg` is the `String` below, alive for the call; `msg` is
        // a NUL-terminated string from mimalloc.
        let out = unsafe { &mut *(arg as *mut String) };
        out.push_str(&unsafe { CStr::from_ptr(msg) }.to_string_lossy());
    }
    let mut out = String::new();
    // SAFETY: `collect` matches mimalloc's output callback; `out` outlives
    // the call, which is synchronous.
    unsafe { libmimalloc_sys::mi_stats_print_out(Some(collect), &mut out as *mut String as *mut c_void) };
    out
}

/// Redis' `bytesToHuman`: `1.02M`, `6.54G`, `200B`.
pub(crate) fn human(n: u64) -> String {
    let n = n as f64;
    let units = [
        ("K", 1024f64),
        ("M", 1024f64.powi(2)),
        ("G", 1024f64.powi(3)),
        ("T", 1024f64.powi(4)),
        ("P", 1024f64.powi(5)),
    ];
    if n < 1024.0 {
        return format!("{}B", n as u64);
    }
    let (unit, size) = units.iter().rev().find(|(_, size)| n >= *size).expect("at least K");
    format!("{:.2}{unit}", n / size)
}

/// Total physical memory, from /proc/meminfo.
pub(crate) fn system_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_and_human_sizes() {
        let m = read();
        assert!(m.rss > 0 && m.allocated > 0 && m.peak_allocated >= m.allocated);
        assert_eq!(human(200), "200B");
        assert_eq!(human(1_064_528), "1.02M");
        assert_eq!(human(25_275_990_016), "23.54G");
        assert!(!allocator_report().is_empty());
    }
}
