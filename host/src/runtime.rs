//! The process-wide WebAssembly runtime: one engine, one linker, a compile
//! cache, and the per-call state every `Store` carries.

mod call;
mod compile_cache;
mod engine;
mod output;

pub use call::{CallEnv, CallError, CallLimits, CallState, GuestCall};
pub use compile_cache::CompileCache;
pub use engine::{Runtime, RuntimeOptions};
pub use output::CappedOutput;
