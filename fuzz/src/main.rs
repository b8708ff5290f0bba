//! gregor's fuzz driver: feeds hostile bytes to every decoder gregor owns and fails on a
//! panic, an abort, a violated invariant, or a heap peak above a fixed bound per input.
//!
//! ```text
//! cd fuzz && cargo run --release -- all --minutes 10     # every target, one after another
//! cd fuzz && cargo run --release -- run records --seconds 60
//! cd fuzz && cargo run --release -- replay records artifacts/records/panic-*.bin
//! cd fuzz && cargo run --release -- all --seconds 10 --seed 1 --no-save   # the smoke run
//! cd fuzz && cargo run --release -- cmin all         # shrink corpus/: one input per outcome
//! cd fuzz && cargo run --release -- seed                 # rewrite the seed inputs of corpus/
//! ```
//!
//! Stable Rust has no coverage instrumentation for libFuzzer (cargo-fuzz needs nightly's
//! `-Zsanitizer` and sancov passes), so this driver is coverage-less: it mixes structured
//! generators (valid encodings built from random values), havoc mutations of the corpus, and
//! random bytes, and keeps an input when it produces an outcome (an error kind, a decoded
//! shape) not seen before. Each run happens in a child process so that an abort or a stack
//! overflow is caught too: the input being run is always on disk in
//! `artifacts/<target>/current`, and the supervisor keeps it when the child dies.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use gregor_fuzz::rng::{self, Rng};
use gregor_fuzz::targets::{self, Target};
use gregor_fuzz::{Verdict, hash, install_panic_hook, run_one, take_reference_peak};

/// Most entries kept in memory per target; the corpus written to disk is smaller.
const POOL_MAX: usize = 4096;
/// Most new corpus files one run adds per target, and their largest size.
const CORPUS_ADD_MAX: usize = 64;
const CORPUS_FILE_MAX: usize = 16 * 1024;
/// Most inputs besides the seeds `cmin` keeps per target (the smallest ones).
const CORPUS_KEEP_MAX: usize = 128;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let result = match args.first().map(String::as_str) {
        Some("list") => {
            for t in targets::all() {
                println!("{:<12} {}", t.name, t.about);
            }
            Ok(true)
        }
        Some("seed") => seed(&root).map(|()| true),
        Some("cmin") => match args.get(1).map(String::as_str) {
            Some("all") => targets::all()
                .iter()
                .try_for_each(|t| cmin(&root, t.name))
                .map(|()| true),
            Some(name) => cmin(&root, name).map(|()| true),
            None => Err("cmin needs a target name or `all`".into()),
        },
        Some("all") => {
            let secs = duration_arg(&args[1..]).unwrap_or(600);
            let mut result = Ok(true);
            for t in targets::all() {
                match supervise(&root, t.name, secs, seed_arg(&args[1..]), save(&args[1..])) {
                    Ok(clean) => result = result.map(|c| c && clean),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            result
        }
        Some("run") => match args.get(1) {
            Some(name) => supervise(
                &root,
                name,
                duration_arg(&args[2..]).unwrap_or(60),
                seed_arg(&args[2..]),
                save(&args[2..]),
            ),
            None => Err("run needs a target name (see `list`)".into()),
        },
        Some("worker") => match args.get(1) {
            Some(name) => worker(
                &root,
                name,
                duration_arg(&args[2..]).unwrap_or(60),
                seed_arg(&args[2..]).unwrap_or(1),
                save(&args[2..]),
            ),
            None => Err("worker needs a target name".into()),
        },
        Some("replay") => match args.get(1) {
            Some(name) => replay(name, &args[2..]),
            None => Err("replay needs a target name and files".into()),
        },
        _ => {
            println!(
                "usage: gregor-fuzz list | seed | cmin TARGET|all\n\
                 \x20      | all [--minutes N | --seconds N] [--seed N] [--no-save]\n\
                 \x20      | run TARGET [--minutes N | --seconds N] [--seed N] [--no-save]\n\
                 \x20      | replay TARGET FILE...\n\
                 --no-save: add nothing to corpus/ (findings still go to artifacts/)"
            );
            Ok(true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("gregor-fuzz: findings: see artifacts/");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("gregor-fuzz: {e}");
            ExitCode::from(2)
        }
    }
}

fn flag(args: &[String], name: &str) -> Option<u64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn duration_arg(args: &[String]) -> Option<u64> {
    flag(args, "--seconds").or_else(|| flag(args, "--minutes").map(|m| m * 60))
}

/// False with `--no-save`: the run adds nothing to corpus/ (a smoke or CI run).
fn save(args: &[String]) -> bool {
    !args.iter().any(|a| a == "--no-save")
}

fn seed_arg(args: &[String]) -> Option<u64> {
    flag(args, "--seed")
}

fn target(name: &str) -> Result<&'static Target, String> {
    targets::find(name).ok_or_else(|| format!("no target {name:?} (see `list`)"))
}

/// Runs workers for `name` until `secs` have passed, restarting after a crash; true if clean.
fn supervise(
    root: &Path,
    name: &str,
    secs: u64,
    seed: Option<u64>,
    save: bool,
) -> Result<bool, String> {
    target(name)?;
    let artifacts = root.join("artifacts").join(name);
    fs::create_dir_all(&artifacts).map_err(|e| format!("{}: {e}", artifacts.display()))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let mut clean = true;
    loop {
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        if left == 0 {
            break;
        }
        let status = Command::new(&exe)
            .args(["worker", name, "--seconds", &left.to_string()])
            .args(["--seed", &seed.to_string()])
            .args(if save { &[][..] } else { &["--no-save"][..] })
            .status()
            .map_err(|e| format!("starting the worker: {e}"))?;
        match status.code() {
            Some(0) => break,
            Some(1) => {
                clean = false;
                break;
            }
            _ => {
                // Killed by a signal (abort, stack overflow) or exited oddly: keep the input.
                clean = false;
                let current = artifacts.join("current");
                let input = fs::read(&current).unwrap_or_default();
                let path = artifacts.join(format!("abort-{:016x}.bin", hash(&input)));
                let _ = fs::write(&path, &input);
                eprintln!(
                    "[{name}] worker died ({status}); input kept in {}",
                    path.display()
                );
                seed = seed.wrapping_add(1);
            }
        }
    }
    Ok(clean)
}

/// A finding kept on disk: the input and what went wrong.
fn keep(dir: &Path, kind: &str, input: &[u8], what: &str) {
    let base = dir.join(format!("{kind}-{:016x}", hash(input)));
    let _ = fs::write(base.with_extension("bin"), input);
    let _ = fs::write(base.with_extension("txt"), what);
}

fn load_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| fs::read(p).ok()).collect()
}

/// The fuzzing loop of one target, in the child process.
fn worker(root: &Path, name: &str, secs: u64, seed: u64, save: bool) -> Result<bool, String> {
    let t = target(name)?;
    install_panic_hook();
    let artifacts = root.join("artifacts").join(name);
    let corpus_dir = root.join("corpus").join(name);
    fs::create_dir_all(&artifacts).map_err(|e| e.to_string())?;
    let current = fs::File::create(artifacts.join("current")).map_err(|e| e.to_string())?;
    let mut rng = Rng::new(seed);
    let mut pool = load_corpus(&corpus_dir);
    if pool.is_empty() {
        pool = (t.seeds)();
    }
    let corpus_start = pool.len();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut added: Vec<Vec<u8>> = Vec::new();
    let (mut execs, mut panics, mut allocs, mut invariants) = (0u64, 0u64, 0u64, 0u64);
    let mut reported: HashSet<String> = HashSet::new();
    let mut max_peak = 0usize;
    take_reference_peak();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut next_report = start + Duration::from_secs(60);
    let mut i = 0usize;
    loop {
        // The corpus first, as is; then generated and mutated inputs until the deadline.
        let input = if i < corpus_start {
            pool[i].clone()
        } else {
            if Instant::now() >= deadline {
                break;
            }
            match rng.below(16) {
                0..=2 => (t.generate)(&mut rng),
                3 => {
                    let n = rng.len(t.max_len);
                    rng.bytes(n)
                }
                4 | 5 => {
                    let mut g = (t.generate)(&mut rng);
                    let other = pool[rng.below(pool.len())].clone();
                    rng::mutate(&mut rng, &mut g, &other, t.max_len);
                    g
                }
                _ if !pool.is_empty() => {
                    let mut m = pool[rng.below(pool.len())].clone();
                    let other = &pool[rng.below(pool.len())];
                    rng::mutate(&mut rng, &mut m, other, t.max_len);
                    m
                }
                _ => (t.generate)(&mut rng),
            }
        };
        i += 1;
        // On disk before it runs: an abort still leaves it for the supervisor.
        let _ = current.set_len(0);
        let _ = current.write_all_at(&input, 0);
        let (verdict, peak) = run_one(t, &input);
        execs += 1;
        max_peak = max_peak.max(peak);
        match verdict {
            Verdict::Ok(sig) => {
                if seen.insert(sig) && i > corpus_start {
                    if pool.len() < POOL_MAX {
                        pool.push(input.clone());
                    } else {
                        let k = rng.below(pool.len());
                        pool[k] = input.clone();
                    }
                    if added.len() < CORPUS_ADD_MAX && input.len() <= CORPUS_FILE_MAX {
                        added.push(input);
                    }
                }
            }
            Verdict::Panic(what) => {
                panics += 1;
                if reported.insert(what.clone()) {
                    eprintln!("[{name}] PANIC: {what}");
                    keep(&artifacts, "panic", &input, &what);
                }
            }
            Verdict::Invariant(what) => {
                invariants += 1;
                let key: String = what
                    .chars()
                    .filter(|c| !c.is_ascii_digit())
                    .take(80)
                    .collect();
                if reported.insert(key) {
                    eprintln!("[{name}] INVARIANT: {what}");
                    keep(&artifacts, "invariant", &input, &what);
                }
            }
            Verdict::Alloc { peak, bound } => {
                allocs += 1;
                let what = format!(
                    "heap peak {peak} bytes for a {}-byte input (bound {bound})",
                    input.len()
                );
                if reported.len() < 64 && reported.insert(format!("alloc {}", peak >> 20)) {
                    eprintln!("[{name}] ALLOCATION: {what}");
                    keep(&artifacts, "alloc", &input, &what);
                }
            }
        }
        if Instant::now() >= next_report {
            next_report += Duration::from_secs(60);
            let s = start.elapsed().as_secs_f64();
            eprintln!(
                "[{name}] {:>5.0}s execs {execs} ({:.0}/s) outcomes {} pool {} findings {}",
                s,
                execs as f64 / s,
                seen.len(),
                pool.len(),
                panics + allocs + invariants
            );
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    // New inputs join the corpus (small ones, a bounded number per run).
    if save && !added.is_empty() {
        fs::create_dir_all(&corpus_dir).map_err(|e| e.to_string())?;
        for input in &added {
            let _ = fs::write(corpus_dir.join(format!("{:016x}", hash(input))), input);
        }
    }
    let line = format!(
        "target={name} seconds={elapsed:.0} execs={execs} execs_per_s={:.0} outcomes={} \
         corpus_in={corpus_start} corpus_added={} panics={panics} alloc_over_bound={allocs} \
         invariants={invariants} max_heap_peak={max_peak} reference_heap_peak={} seed={seed}",
        execs as f64 / elapsed.max(1e-9),
        seen.len(),
        added.len(),
        take_reference_peak(),
    );
    println!("SUMMARY {line}");
    if let Ok(mut log) = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("artifacts").join("summary.log"))
    {
        let _ = writeln!(log, "{line}");
    }
    Ok(panics + allocs + invariants == 0)
}

/// Runs files (or every file of directories) once each and prints what happened.
fn replay(name: &str, paths: &[String]) -> Result<bool, String> {
    let t = target(name)?;
    install_panic_hook();
    let mut clean = true;
    let mut files = Vec::new();
    for p in paths {
        let p = PathBuf::from(p);
        if p.is_dir() {
            let mut v: Vec<PathBuf> = fs::read_dir(&p)
                .map_err(|e| e.to_string())?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            v.sort();
            files.extend(v);
        } else {
            files.push(p);
        }
    }
    for f in files {
        let input = fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let (verdict, peak) = run_one(t, &input);
        let what = match verdict {
            Verdict::Ok(sig) => format!("ok (outcome {sig:016x})"),
            Verdict::Panic(w) => {
                clean = false;
                format!("PANIC {w}")
            }
            Verdict::Invariant(w) => {
                clean = false;
                format!("INVARIANT {w}")
            }
            Verdict::Alloc { peak, bound } => {
                clean = false;
                format!("ALLOCATION peak {peak} > bound {bound}")
            }
        };
        println!(
            "{}: {} bytes, heap peak {peak} (reference decoder {}): {what}",
            f.display(),
            input.len(),
            take_reference_peak()
        );
    }
    Ok(clean)
}

/// Shrinks `corpus/<name>/`: replays every input and keeps, for each outcome, the smallest
/// input that produces it, then at most [`CORPUS_KEEP_MAX`] of those (the smallest), and
/// every `seed-*` file; the others are deleted. An input that fails (a finding) is left alone
/// and reported.
fn cmin(root: &Path, name: &str) -> Result<(), String> {
    let t = target(name)?;
    install_panic_hook();
    let dir = root.join("corpus").join(name);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    // Outcome -> (length, file) of the smallest input with it.
    let mut best: std::collections::HashMap<u64, (usize, PathBuf)> = Default::default();
    let mut remove = Vec::new();
    let before = files.len();
    for f in files {
        let input = fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let seed = f
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("seed-"));
        match run_one(t, &input).0 {
            Verdict::Ok(sig) if !seed => match best.get(&sig) {
                Some((len, _)) if *len <= input.len() => remove.push(f),
                _ => {
                    if let Some((_, old)) = best.insert(sig, (input.len(), f)) {
                        remove.push(old);
                    }
                }
            },
            Verdict::Ok(_) => {}
            other => eprintln!("[{name}] {}: {other:?} (kept)", f.display()),
        }
    }
    // Without coverage, outcomes are many: past the cap, the largest inputs go.
    let mut kept: Vec<(usize, PathBuf)> = best.into_values().collect();
    kept.sort();
    remove.extend(kept.into_iter().skip(CORPUS_KEEP_MAX).map(|(_, f)| f));
    for f in &remove {
        fs::remove_file(f).map_err(|e| format!("{}: {e}", f.display()))?;
    }
    println!(
        "{name:<12} corpus {before} -> {} files",
        before - remove.len()
    );
    Ok(())
}

/// Writes each target's seed inputs to `corpus/<target>/seed-NN` (replacing older seeds).
fn seed(root: &Path) -> Result<(), String> {
    for t in targets::all() {
        let dir = root.join("corpus").join(t.name);
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let seeds = (t.seeds)();
        for (i, s) in seeds.iter().enumerate() {
            fs::write(dir.join(format!("seed-{i:03}")), s).map_err(|e| e.to_string())?;
        }
        println!("{:<12} {} seeds", t.name, seeds.len());
    }
    Ok(())
}
