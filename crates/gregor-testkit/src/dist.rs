//! The Kafka distribution: Java, the jars from Maven Central, and where everything lives.
//!
//! ```text
//! deployments/local/pom.xml ──mvn copy-dependencies (once)──▶ target/gregor/kafka-<v>/libs/*.jar
//!                                                               │
//! java -cp libs/* kafka.Kafka server.properties  ◀──────────────┘
//! ```

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::error::{Error, IoContext, Result};

/// The pom that lists the broker, the tools and the logging backend. Embedded so the testkit
/// needs nothing from the source tree at run time; `deployments/local/pom.xml` is the one copy.
const POM: &str = include_str!("../../../deployments/local/pom.xml");

/// log4j2 configuration for brokers and tools: everything to a file under the node's log dir.
const LOG4J2: &str = include_str!("../../../deployments/local/log4j2.properties");

/// The Apache Kafka version the testkit runs, read from the pom (`<kafka.version>`).
pub fn kafka_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| pom_property("kafka.version").unwrap_or_else(|| String::from("unknown")))
}

fn pom_property(name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = POM.find(&open)? + open.len();
    let len = POM[start..].find(&close)?;
    Some(POM[start..start + len].trim().to_owned())
}

/// Root of the workspace this testkit was built in (`GREGOR_WORKSPACE` overrides).
pub fn workspace_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("GREGOR_WORKSPACE") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where brokers keep their data, logs and state files: `GREGOR_STATE_DIR`, or `target/gregor`.
pub fn state_root() -> PathBuf {
    match std::env::var_os("GREGOR_STATE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => cache_root(),
    }
}

/// `target/gregor`: the jar cache (shared by every state dir).
pub fn cache_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("gregor")
}

/// A ready-to-run Kafka: a Java 17+ binary and the classpath of jars.
#[derive(Debug, Clone)]
pub struct Distribution {
    java: PathBuf,
    libs: PathBuf,
    log4j2: PathBuf,
}

impl Distribution {
    /// Finds Java and makes sure the jars are in the cache, fetching them with Maven the first
    /// time (under a file lock, so concurrent test binaries download once).
    pub fn ensure() -> Result<Distribution> {
        let java = find_java()?;
        let home = cache_root().join(format!("kafka-{}", kafka_version()));
        let libs = home.join("libs");
        let done = home.join(".complete");
        fs::create_dir_all(&home).context(|| format!("creating {}", home.display()))?;
        let log4j2 = home.join("log4j2.properties");
        if !done.exists() {
            let lock = File::create(home.join(".lock"))
                .context(|| format!("creating lock in {}", home.display()))?;
            lock.lock()
                .context(|| format!("locking {}", home.display()))?;
            if !done.exists() {
                fetch_jars(&home, &libs)?;
                fs::write(&done, kafka_version())
                    .context(|| format!("writing {}", done.display()))?;
            }
        }
        // Rewritten every time: cheap, and edits to the source copy take effect.
        write_if_changed(&log4j2, LOG4J2)?;
        Ok(Distribution { java, libs, log4j2 })
    }

    /// A `java` command with the Kafka classpath, logging to `logs_dir`, heap `heap`
    /// (e.g. "512m"), running `main_class`.
    pub fn java(&self, main_class: &str, logs_dir: &Path, heap: &str) -> Command {
        let mut cmd = Command::new(&self.java);
        cmd.arg(format!("-Xmx{heap}"))
            .arg(format!(
                "-Xms{}",
                if heap == "1g" { "256m" } else { "128m" }
            ))
            .args([
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-XX:+ExitOnOutOfMemoryError",
                "-Djava.awt.headless=true",
            ])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.log4j2.display()
            ))
            .arg(format!("-Dkafka.logs.dir={}", logs_dir.display()))
            .arg("-cp")
            .arg(self.classpath())
            .arg(main_class)
            .stdin(Stdio::null());
        cmd
    }

    /// The classpath (`libs/*`).
    pub fn classpath(&self) -> String {
        format!("{}/*", self.libs.display())
    }

    /// The `java` binary in use.
    pub fn java_binary(&self) -> &Path {
        &self.java
    }
}

fn write_if_changed(path: &Path, content: &str) -> Result<()> {
    if fs::read_to_string(path).ok().as_deref() != Some(content) {
        fs::write(path, content).context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `JAVA_HOME/bin/java` or `java` on PATH, if it is Java 17 or newer.
pub(crate) fn find_java() -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = std::env::var_os("JAVA_HOME")
        .map(|home| PathBuf::from(home).join("bin/java"))
        .into_iter()
        .chain(std::iter::once(PathBuf::from("java")))
        .collect();
    let mut found = Vec::new();
    for java in candidates {
        let out = match Command::new(&java).arg("-version").output() {
            Ok(out) => out,
            Err(e) => {
                found.push(format!("{}: {e}", java.display()));
                continue;
            }
        };
        let text = String::from_utf8_lossy(&out.stderr);
        match java_major(&text) {
            Some(major) if major >= 17 => return Ok(java),
            Some(major) => found.push(format!("{} is Java {major}", java.display())),
            None => found.push(format!(
                "{} printed no version: {}",
                java.display(),
                text.lines().next().unwrap_or("")
            )),
        }
    }
    Err(Error::Java {
        detail: found.join("; "),
    })
}

/// Major version from `java -version` output (`openjdk version "17.0.15"`, `"1.8.0_392"`).
fn java_major(text: &str) -> Option<u32> {
    let line = text.lines().find(|l| l.contains("version"))?;
    let quoted = line.split('"').nth(1)?;
    let mut parts = quoted.split(['.', '-', '+', '_']);
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        parts.next()?.parse().ok()
    } else {
        Some(first)
    }
}

fn fetch_jars(home: &Path, libs: &Path) -> Result<()> {
    let pom = home.join("pom.xml");
    write_if_changed(&pom, POM)?;
    if libs.exists() {
        fs::remove_dir_all(libs).context(|| format!("clearing {}", libs.display()))?;
    }
    let out = Command::new("mvn")
        .args(["-q", "-B", "-f"])
        .arg(&pom)
        .args([
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            "-Dmdep.useRepositoryLayout=false",
        ])
        .arg(format!("-DoutputDirectory={}", libs.display()))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Maven {
            detail: format!("could not run mvn: {e}"),
        })?;
    if !out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        return Err(Error::Maven {
            detail: format!("mvn exited with {}: {}", out.status, last_lines(&text, 20)),
        });
    }
    let has_broker = fs::read_dir(libs)
        .context(|| format!("listing {}", libs.display()))?
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("kafka_2.13-"));
    if !has_broker {
        return Err(Error::Maven {
            detail: format!("no kafka_2.13 jar in {} after mvn", libs.display()),
        });
    }
    Ok(())
}

/// The last `n` lines of `text`.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last `n` lines of a file, or a note that it could not be read.
pub(crate) fn tail_file(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            // Only the end matters; avoid decoding a large log in full.
            let start = bytes.len().saturating_sub(64 * 1024);
            last_lines(&String::from_utf8_lossy(&bytes[start..]), n)
        }
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_versions_parse() {
        assert_eq!(
            java_major("openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime"),
            Some(17)
        );
        assert_eq!(java_major("java version \"1.8.0_392\""), Some(8));
        assert_eq!(java_major("openjdk version \"25\" 2025-09-16"), Some(25));
        assert_eq!(java_major("garbage"), None);
    }

    #[test]
    fn pom_pins_one_kafka_4() {
        assert!(kafka_version().starts_with("4."), "{}", kafka_version());
    }

    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(last_lines("a\nb\nc\nd", 2), "c\nd");
        assert_eq!(last_lines("a", 5), "a");
    }
}
