//! Two test processes that need Kafka at the same moment start one broker, not two.
//!
//! This binary runs without the test harness: as the parent it starts two copies of itself
//! (children) at once against a fresh state directory; each child asks the testkit for the local
//! broker and prints the pid and address it got. The parent checks both got the same broker,
//! that exactly one JVM runs for that directory, and then stops it.

use std::process::{Command, ExitCode, Stdio};

const CHILD: &str = "GREGOR_SHARED_BROKER_CHILD";

fn main() -> ExitCode {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    match parent() {
        Ok(()) => {
            println!("test two_test_processes_start_one_broker ... ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("test two_test_processes_start_one_broker ... FAILED\n{e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn child() -> ExitCode {
    if std::env::args().any(|a| a == "--stop") {
        return match runtime().block_on(gregor_testkit::stop_local()) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    match runtime().block_on(gregor_testkit::ensure_local()) {
        Ok(state) => {
            println!("{} {}", state.pid, state.bootstrap);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn parent() -> Result<(), String> {
    if std::env::var_os(gregor_testkit::BOOTSTRAP_ENV).is_some() {
        // With an external cluster the testkit starts nothing; that is tested by there being
        // no local state. Nothing to share, so say so instead of pretending.
        println!("external cluster configured: the local-broker sharing check does not apply");
        return Ok(());
    }
    let dir = gregor_testkit::cache_root().join(format!("shared-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let spawn = || {
        Command::new(&exe)
            .env(CHILD, "1")
            .env("GREGOR_STATE_DIR", &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())
    };
    let (a, b) = (spawn()?, spawn()?);
    let outs = [a, b].map(|c| c.wait_with_output());
    let mut seen = Vec::new();
    for out in outs {
        let out = out.map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        seen.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    let result = check(&seen, &dir);
    // Stop the broker the children shared, whatever the verdict, through a child so the
    // testkit resolves the same state directory.
    let stopped = Command::new(&exe)
        .env(CHILD, "1")
        .env("GREGOR_STATE_DIR", &dir)
        .arg("--stop")
        .status()
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    if !stopped.success() {
        return Err(format!("stopping the shared broker failed: {stopped}"));
    }
    Ok(())
}

fn check(seen: &[String], dir: &std::path::Path) -> Result<(), String> {
    if seen[0] != seen[1] {
        return Err(format!(
            "the two processes got different brokers: {:?} and {:?}",
            seen[0], seen[1]
        ));
    }
    let marker = dir.display().to_string();
    let jvms = std::fs::read_dir("/proc")
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| {
                    let c = String::from_utf8_lossy(&c);
                    c.contains("kafka.Kafka") && c.contains(&marker)
                })
                .unwrap_or(false)
        })
        .count();
    if jvms != 1 {
        return Err(format!(
            "{jvms} Kafka JVMs run for {marker}, expected exactly 1"
        ));
    }
    println!("both processes share broker {}", seen[0]);
    Ok(())
}
