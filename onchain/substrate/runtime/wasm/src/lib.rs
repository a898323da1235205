//! Links the dev runtime into a wasm32 cdylib: the runtime crate's
//! `impl_runtime_apis!` exports become the blob's exports.
#![no_std]

pub use isthmus_dev_runtime::*;
