//! docs/configuration.md is generated from ClientConfig's property table, and this test fails
//! when the two drift apart. Regenerate with:
//!
//!     GREGOR_BLESS=1 cargo test -p gregor-client --test config_docs

use gregor_client::{ClientConfig, Kind, Scope, Support, properties};

fn kind(k: &Kind) -> String {
    match k {
        Kind::Str => "string".into(),
        Kind::List => "list".into(),
        Kind::Bool => "bool".into(),
        Kind::Int { min, max } if *max == i64::from(i32::MAX) => format!("int >= {min}"),
        Kind::Int { min, max } => format!("int {min}..={max}"),
        Kind::Enum(words) => words
            .iter()
            .map(|w| if w.is_empty() { "(empty)" } else { w })
            .collect::<Vec<_>>()
            .join(" \\| "),
        _ => "value".into(),
    }
}

fn render() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from gregor-client's property table by \
         `GREGOR_BLESS=1 cargo test -p gregor-client --test config_docs`; do not edit by hand. -->\n\n\
         gregor's clients take the property names of the Java client and librdkafka. Set them in \
         code (`ClientConfig::set`), from a map, from `KAFKA_*` environment variables \
         (`KAFKA_BOOTSTRAP_SERVERS` is `bootstrap.servers`) or from a `.properties` file. An \
         unknown name is an error that suggests the nearest known one. **Honoured** says whether \
         gregor does what the property asks; where it cannot, the value is refused or a warning \
         says what happens instead: never silently ignored.\n",
    );
    for (scope, title) in [
        (Scope::Common, "Every client"),
        (Scope::Producer, "Producer"),
        (Scope::Consumer, "Consumer"),
    ] {
        let props: Vec<_> = properties().filter(|p| p.scope == scope).collect();
        out.push_str(&format!("\n## {title}\n\n"));
        if props.is_empty() {
            out.push_str("None yet.\n");
            continue;
        }
        out.push_str("| property | default | type | honoured | meaning |\n");
        out.push_str("| --- | --- | --- | --- | --- |\n");
        for p in props {
            let mut name = format!("`{}`", p.name);
            if !p.aliases.is_empty() {
                let aliases: Vec<String> = p.aliases.iter().map(|a| format!("`{a}`")).collect();
                name.push_str(&format!(" (also {})", aliases.join(", ")));
            }
            let honoured = match p.support {
                Support::Honoured => "yes".to_owned(),
                Support::Gap { note, .. } => format!("partly: {note}"),
                Support::Warn { note, .. } => format!("partly (warns): {note}"),
                _ => "see notes".to_owned(),
            };
            out.push_str(&format!(
                "| {name} | {} | {} | {honoured} | {} |\n",
                p.default
                    .map(|d| format!("`{d}`"))
                    .unwrap_or_else(|| "-".into()),
                kind(&p.kind),
                p.doc.replace('|', "\\|"),
            ));
        }
    }
    out
}

#[test]
fn configuration_md_matches_the_property_table() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let want = render();
    if std::env::var_os("GREGOR_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/configuration.md is out of date with the property table; regenerate it with \
         GREGOR_BLESS=1 cargo test -p gregor-client --test config_docs"
    );
}

#[test]
fn every_documented_property_is_accepted_and_every_accepted_one_documented() {
    let doc = render();
    for p in properties() {
        assert!(
            doc.contains(&format!("`{}`", p.name)),
            "{} missing from the docs",
            p.name
        );
        if let Some(default) = p.default {
            ClientConfig::new()
                .set(p.name, default)
                .unwrap_or_else(|e| panic!("{} rejects its own default: {e}", p.name));
        }
    }
    // And the other way: every property row of the committed docs is a key ClientConfig knows.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let name = line.trim_start_matches("| `").split('`').next().unwrap();
        assert!(
            properties().any(|p| p.name == name),
            "docs/configuration.md documents {name}, which ClientConfig does not know"
        );
    }
}
