//! gregor's fuzz targets, shared by the standalone driver (`src/main.rs`, coverage-less, runs
//! on any stable toolchain with a plain `cargo run`) and by cargo-fuzz's libFuzzer targets
//! (`fuzz_targets/`, coverage-guided, `cargo fuzz run -s none --features libfuzzer NAME`).
//!
//! Every input is checked for: no panic; no violated invariant (round trips, agreement with a
//! reference decoder); a heap peak under the target's bound for the input's length, measured
//! by the global allocator below.

pub mod generate;
pub mod rng;
pub mod targets;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use peakmem_alloc::{INSTRUMENTED_SYSTEM, PeakMemAlloc, PeakMemAllocTrait};

use targets::Target;

#[global_allocator]
static GLOBAL: &PeakMemAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// The largest heap peak of a reference decoder (see [`unmeasured`]) since the last
/// [`take_reference_peak`].
static REFERENCE_PEAK: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` (a reference decoder, not gregor's code) outside the input's heap measurement:
/// its own peak goes to a separate record ([`take_reference_peak`]), and the input's
/// measurement starts again after it. Call it before gregor's code runs on the input, so that
/// nothing gregor holds is live across the restart.
pub fn unmeasured<R>(f: impl FnOnce() -> R) -> R {
    GLOBAL.reset_peak_memory();
    let r = f();
    REFERENCE_PEAK.fetch_max(GLOBAL.get_peak_memory(), Ordering::Relaxed);
    GLOBAL.reset_peak_memory();
    r
}

/// The largest heap peak of the reference decoders since the last call, and resets it.
pub fn take_reference_peak() -> usize {
    REFERENCE_PEAK.swap(0, Ordering::Relaxed)
}

/// The last panic's message and location, set by the driver's hook.
static PANIC: Mutex<Option<String>> = Mutex::new(None);

/// A stable-enough hash of an input, for file names.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// What running one input did.
#[derive(Debug)]
pub enum Verdict {
    /// Fine; the outcome signature.
    Ok(u64),
    /// It panicked: message and location.
    Panic(String),
    /// It returned, but broke an invariant.
    Invariant(String),
    /// Its heap peak passed the target's bound.
    Alloc {
        /// Peak heap bytes held during the input.
        peak: usize,
        /// The bound for its length.
        bound: usize,
    },
}

/// Records panics (message and location) instead of printing them; see [`run_one`].
pub fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let msg = match info.payload().downcast_ref::<&str>() {
            Some(s) => (*s).to_owned(),
            None => info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default(),
        };
        let at = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        *PANIC.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{msg} at {at}"));
    }));
}

/// Runs one input under `catch_unwind`, measuring its heap peak; returns the verdict and peak.
pub fn run_one(t: &Target, input: &[u8]) -> (Verdict, usize) {
    GLOBAL.reset_peak_memory();
    let result = panic::catch_unwind(AssertUnwindSafe(|| (t.run)(input)));
    let peak = GLOBAL.get_peak_memory();
    let verdict = match result {
        Err(_) => Verdict::Panic(
            PANIC
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_else(|| "panic without a message".into()),
        ),
        Ok(Err(what)) => Verdict::Invariant(what),
        Ok(Ok(sig)) => {
            let bound = (t.alloc_bound)(input.len());
            if peak > bound {
                Verdict::Alloc { peak, bound }
            } else {
                Verdict::Ok(sig)
            }
        }
    };
    (verdict, peak)
}

/// The body of a libFuzzer target: runs `name` on `data` and panics (which libFuzzer records
/// as a crash, with the input) on an invariant or allocation finding. A panic of the decoder
/// itself reaches libFuzzer's hook directly.
pub fn libfuzzer(name: &str, data: &[u8]) {
    let Some(t) = targets::find(name) else {
        panic!("no target {name}");
    };
    GLOBAL.reset_peak_memory();
    let result = (t.run)(data);
    let peak = GLOBAL.get_peak_memory();
    if let Err(what) = result {
        panic!("invariant: {what}");
    }
    let bound = (t.alloc_bound)(data.len());
    if peak > bound {
        panic!(
            "allocation: heap peak {peak} bytes for a {}-byte input (bound {bound})",
            data.len()
        );
    }
}
