# gregor's tasks. `just` lists them.
#
# Everything runs against a real Apache Kafka 4.x (KRaft) started from Maven Central jars with
# Java 17+ by gregor-testkit; set KAFKA_BOOTSTRAP_SERVERS to use an existing cluster instead.

set shell := ["bash", "-euo", "pipefail", "-c"]

gregor := "cargo run --quiet --package gregor-cli --bin gregor --"

# List the recipes.
default:
    @just --list

# Start the local single-node Kafka and leave it running (reused by tests and the demo).
up:
    {{gregor}} dev up

# Stop the local Kafka.
down:
    {{gregor}} dev down

# Is the local Kafka running and answering?
status:
    {{gregor}} dev status

# Print the bootstrap address of the running local Kafka (the last line is the address).
bootstrap:
    {{gregor}} dev bootstrap

# Run every test: unit, integration (real broker, three-node cluster) and doc tests.
test:
    cargo test --workspace --all-targets
    cargo test --workspace --doc

# The order pipeline end to end: Kafka and the schema registry, the topics of
# deployments/topics.yaml, order-consumer, then order-producer with 1,000 orders plus poison
# records; stops the consumer with SIGTERM and checks produced = processed + dead-lettered +
# filtered, per topic against the broker's offsets.
demo count="1000":
    cargo build --quiet -p order-consumer -p order-producer
    "${CARGO_TARGET_DIR:-target}/debug/order-demo" --count {{count}}

# Formatting, clippy with warnings as errors, and docs without warnings.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

# The fault suite at the issue's sizes (three-node cluster, >= 100,000 records per scenario):
# prints the summary table. A short version runs under `just test`.
chaos:
    GREGOR_CHAOS=full cargo test -p gregor --test chaos

# Fuzz every decoder for 10 minutes each (fuzz/: its own workspace; see docs/fuzzing.md),
# then shrink the corpus to one input per outcome.
fuzz:
    cd fuzz && { nice -n 10 cargo run --release -- all --minutes 10; s=$?; cargo run --release -- cmin all && exit $s; }

# Replay the fuzz corpus, then fuzz each target for 10 seconds (fixed seed, corpus unchanged).
fuzz-smoke:
    cd fuzz && cargo run --release -- all --seconds 10 --seed 1 --no-save

# Type-check the Grafana dashboard against Grafana's own schema (@grafana/schema of the pinned
# grafana/grafana image). Needs Node and npm.
grafana-check:
    cd deployments/grafana/schema-check && npm ci --no-audit --no-fund --silent && node check.mjs

# Every client (gregor, librdkafka, the Java client, kafka-go, franz-go) on one fresh broker,
# interleaved rounds; writes docs/benchmarks.md and docs/benchmarks.svg. Needs Go and a JDK.
bench:
    python3 bench/run.py

# The same, smaller: a smoke run of the benchmark pipeline.
bench-quick:
    python3 bench/run.py --quick
