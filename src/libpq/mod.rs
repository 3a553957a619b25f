//! libpq integration: the `lakebase_PQ*` wrappers and the same entry points exported under
//! libpq's own names, so `LD_PRELOAD=liblakebase.so psql ...` (or linking `-llakebase` ahead of
//! `-lpq`) fills in the Lakebase password for unmodified programs.
//!
//! - [`resolve`]: find the real function in the caller's own libpq (several copies may be loaded).
//! - [`params`]: what the call asks for, computed with the real libpq's parser and defaults.
//! - [`hosts`]: which hosts are Lakebase hosts.
//! - [`inject`]: the decision, the injected call, the retry after a rejected cached token.
//! - [`hooks`]: the bodies shared by the `lakebase_PQ*` wrappers (`crate::ffi::pq`) and the
//!   [`interpose`] functions under libpq's own names; [`unwind`]: who called the hook.
//!
//! Host → instance/endpoint discovery (when no target is configured) is in the core
//! (`Client::discover_target`).
//!
//! The library never links libpq: everything is resolved at run time, and programs that never
//! call libpq pay nothing (no constructor, no thread, no I/O).

pub mod hooks;
pub mod hosts;
pub mod inject;
/// cbindgen:ignore
pub mod interpose;
pub mod params;
pub mod resolve;
pub mod sys;
/// cbindgen:ignore
pub mod unwind;
