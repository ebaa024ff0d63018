//! BLAS threading. Ranks are the parallelism, so each rank's BLAS runs on one thread unless the
//! user asked otherwise through OpenBLAS's own environment variables.
//!
//! Not the BLAS itself: OpenBLAS, linked through ndarray.

use std::ffi::{c_char, c_int, CStr};

extern "C" {
    fn openblas_set_num_threads(threads: c_int);
    fn openblas_get_num_threads() -> c_int;
    fn openblas_get_config() -> *const c_char;
}

/// Variables through which a user sets OpenBLAS's thread count; if one is set, it is obeyed.
const THREAD_VARIABLES: [&str; 3] = [
    "OPENBLAS_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OMP_NUM_THREADS",
];

/// Sets one BLAS thread per rank unless the environment chose a count. Returns the count in
/// force.
pub fn configure_threads() -> usize {
    if THREAD_VARIABLES
        .iter()
        .all(|v| std::env::var_os(v).is_none())
    {
        // SAFETY: plain setter of OpenBLAS, called before any BLAS work.
        unsafe { openblas_set_num_threads(1) };
    }
    // SAFETY: plain getter.
    unsafe { openblas_get_num_threads() }.max(1) as usize
}

/// OpenBLAS's description of its build (version, target core, threading model).
pub fn description() -> String {
    // SAFETY: OpenBLAS returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(openblas_get_config()) }
        .to_string_lossy()
        .trim()
        .to_string()
}
