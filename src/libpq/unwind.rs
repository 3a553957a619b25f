//! Finding the caller of a hook: the first stack frame outside this library, walked with the
//! unwinder from libgcc_s (which Rust's std links on Linux).

use libc::{c_int, c_void};

#[repr(C)]
struct UnwindContext {
    _private: [u8; 0],
}
type UnwindTraceFn = extern "C" fn(*mut UnwindContext, *mut c_void) -> c_int;
extern "C" {
    fn _Unwind_Backtrace(trace: UnwindTraceFn, arg: *mut c_void) -> c_int;
    fn _Unwind_GetIP(ctx: *mut UnwindContext) -> usize;
}

struct Walk {
    ours: usize,
    found: usize,
    frames: usize,
}

extern "C" fn walk_frame(ctx: *mut UnwindContext, arg: *mut c_void) -> c_int {
    const URC_NO_REASON: c_int = 0;
    const URC_END_OF_STACK: c_int = 5;
    let w = unsafe { &mut *(arg as *mut Walk) };
    w.frames += 1;
    let ip = unsafe { _Unwind_GetIP(ctx) };
    if ip == 0 || w.frames > 64 {
        return URC_END_OF_STACK;
    }
    match super::resolve::object_of((ip - 1) as *const c_void) {
        Some((base, _)) if base == w.ours => URC_NO_REASON,
        Some(_) => {
            w.found = ip - 1;
            URC_END_OF_STACK
        }
        None => URC_NO_REASON,
    }
}

/// The address in the first stack frame outside this library: our caller.
#[inline(never)]
pub fn caller_address() -> Option<usize> {
    let mut w = Walk { ours: super::resolve::our_base(), found: 0, frames: 0 };
    unsafe { _Unwind_Backtrace(walk_frame, &mut w as *mut Walk as *mut c_void) };
    (w.found != 0).then_some(w.found)
}
