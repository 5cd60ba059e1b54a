//! `evidence-portal`: see `cli` for the commands.

fn main() -> std::process::ExitCode {
    large_allocations_return_to_the_system();
    evidence_portal::cli::main()
}

/// glibc raises its mmap threshold each time a large block is freed, so after the first
/// sign-in each argon2id buffer (19 MiB) comes from the heap instead, where freed buffers pile up
/// in fragments: 200 parallel sign-ins, hashed one per core, still took the process from 19 MiB
/// to 790 MiB. A fixed threshold of 16 MiB keeps those buffers mmapped (returned to the system on
/// free; peak 69 MiB, `tests/bench/signins.py`), while everything smaller than 16 MiB — request
/// buffers, 512 KiB store blocks, 5 MiB upload parts — stays on the heap as before.
///
/// Memory then grew with the core count instead: each thread may take an arena of its own (up to
/// eight per core), and a thread's arena gave memory back only once 32 MiB lay free at its top.
/// With 16 workers (`PORTAL_WORKERS=16` and glibc's arena limit for 16 cores, on 2 cores) a
/// 130 MiB bundle peaked at 138–143 MiB. At most eight arenas, each returning what lies free
/// above 1 MiB at its top, bring that to 44 MiB (and 36–40 MiB with 2 workers, from 51) with
/// throughput within the runs' noise (`tests/bench/run.py --quick`; README, benchmark).
fn large_allocations_return_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called first thing, before any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 * 1024 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 8);
    }
}
