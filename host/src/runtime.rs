//! The process-wide WebAssembly runtime: one engine, one linker, a compile
//! cache.

mod compile_cache;
mod engine;

pub use compile_cache::CompileCache;
pub use engine::{Runtime, RuntimeOptions};
