//! The message-path benchmark (see `message_path.rs`) with mimalloc as the global allocator.
//!
//! A sampled span's memory is allocated on the message path's thread and freed on the batch
//! span processor's thread; glibc's malloc makes such frees contend with the message path's
//! own allocations, mimalloc frees them without a lock. The gap between the two runs is what
//! the allocator choice is worth to a traced service.
//!
//! `cargo bench --bench message_path_mimalloc`

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
#[path = "message_path/runs.rs"]
mod runs;

use criterion::{Criterion, criterion_group, criterion_main};

fn message_path(c: &mut Criterion) {
    runs::message_path(c, "mimalloc");
}

criterion_group!(benches, message_path);
criterion_main!(benches);
