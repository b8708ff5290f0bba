#!/usr/bin/env python3
"""gregor's benchmark driver: every client on the same fresh broker, in one run, interleaved.

    python3 bench/run.py            # the full run (what `just bench` does)
    python3 bench/run.py --quick    # a smaller run, under 3 minutes (`just bench-quick`)

It starts a fresh local Kafka (its own state directory, so the development broker is left
alone), builds the peers, then for each workload runs every client once per round, in the same
order each round (A B C A B C ...), for at least three rounds. Each client is a separate process
that follows bench/README.md's contract; the driver reads the client's JSON line and takes CPU
seconds (user + sys) and peak RSS from the kernel's accounting of that process (wait4). It
writes the results into docs/benchmarks.md between the `bench:begin`/`bench:end` markers, and
a chart to docs/benchmarks.svg.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "bench", "target")
STATE = os.path.join(ROOT, "target", "bench-state")
DOC = os.path.join(ROOT, "docs", "benchmarks.md")
SVG = os.path.join(ROOT, "docs", "benchmarks.svg")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd, env=None, cwd=ROOT, capture=True):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=capture, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr if capture else ''}")
    return r.stdout if capture else ""


# ---------------------------------------------------------------- broker and tools

def gregor(args, env):
    return sh(["cargo", "run", "--quiet", "--package", "gregor-cli", "--bin", "gregor", "--"] + args, env=env)


def start_broker():
    env = dict(os.environ, GREGOR_STATE_DIR=STATE)
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    gregor(["dev", "down"], env)
    shutil.rmtree(STATE, ignore_errors=True)
    out = gregor(["dev", "up"], env)
    bootstrap = out.strip().splitlines()[-1].split("=", 1)[1]
    log(f"fresh broker at {bootstrap}")
    return bootstrap, env


def stop_broker(env):
    gregor(["dev", "down"], env)


def kafka_libs():
    libs = [d for d in os.listdir(os.path.join(ROOT, "target", "gregor")) if d.startswith("kafka-")]
    return os.path.join(ROOT, "target", "gregor", sorted(libs)[-1], "libs")


def java_cmd(main_class, classpath_extra=None):
    libs = kafka_libs()
    cp = f"{libs}/*" if classpath_extra is None else f"{classpath_extra}:{libs}/*"
    log4j = os.path.join(os.path.dirname(libs), "log4j2.properties")
    return ["java", "-Xmx1g", f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={os.path.join(TARGET, 'java-logs')}", "-cp", cp, main_class]


def create_topic(bootstrap, env, name, partitions=6):
    gregor(["-b", bootstrap, "topics", "create", name, "--partitions", str(partitions),
            "--replication", "1", "--allow-legacy-name"], env)


# ---------------------------------------------------------------- peers

def build_peers():
    os.makedirs(TARGET, exist_ok=True)
    peers = {}
    log("building the Go peers")
    sh(["go", "build", "-o", os.path.join(TARGET, "gobench"), "."], cwd=os.path.join(ROOT, "bench", "peers", "go"))
    for client in ("kafka-go", "franz-go"):
        peers[client] = [os.path.join(TARGET, "gobench"), "--client", client]
    log("building the Java peer")
    jdir = os.path.join(TARGET, "java")
    os.makedirs(jdir, exist_ok=True)
    sh(["javac", "-d", jdir, "-cp", f"{kafka_libs()}/*", os.path.join(ROOT, "bench", "peers", "java", "JavaBench.java")])
    peers["java"] = java_cmd("JavaBench", jdir)
    cargo_toml = os.path.join(ROOT, "bench", "Cargo.toml")
    if os.path.exists(cargo_toml):
        log("building the Rust peers (gregor, rust-rdkafka) in release mode")
        target_dir = os.environ.get("CARGO_TARGET_DIR") or os.path.join(TARGET, "cargo")
        env = dict(os.environ, CARGO_TARGET_DIR=target_dir)
        # Only the peer package: the criterion benches of producer/consumer are not needed here.
        sh(["cargo", "build", "--release", "-p", "gregor-bench-peer"], env=env,
           cwd=os.path.join(ROOT, "bench"), capture=False)
        bin_dir = os.path.join(target_dir, "release")
        for name, binary in (("gregor", "gregor-peer"), ("rdkafka", "rdkafka-peer")):
            path = os.path.join(bin_dir, binary)
            if os.path.exists(path):
                peers[name] = [path]
        if "gregor" in peers:
            # The consume workload once more through gregor's Worker with the default stack.
            peers["gregor-worker"] = peers["gregor"]
    return peers


class Accounting:
    """CPU and peak RSS of one child process, via os.wait4."""

    @staticmethod
    def run(cmd, timeout):
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = start + timeout
        out = b""
        err = b""
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        sel.register(proc.stderr, selectors.EVENT_READ)
        open_streams = 2
        while open_streams:
            if time.monotonic() > deadline:
                proc.kill()
                break
            for key, _ in sel.select(timeout=1):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                elif key.fileobj is proc.stdout:
                    out += chunk
                else:
                    err += chunk
        _, status, usage = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        return {
            "code": code,
            "stdout": out.decode(errors="replace"),
            "stderr": err.decode(errors="replace"),
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "rss_mb": usage.ru_maxrss / 1024.0,
            "wall_s": time.monotonic() - start,
        }


def measure(peer_cmd, args, timeout):
    r = Accounting.run(peer_cmd + [str(a) for a in args], timeout)
    if r["code"] != 0:
        lines = r["stderr"].strip().splitlines()
        # The reason, not the tail of a backtrace: anyhow's "Error: ...", a panic's message.
        why = next((l for l in lines if l.startswith("Error:") or "panicked at" in l), None)
        return None, why or (lines or ["exit " + str(r["code"])])[-1]
    line = next((l for l in reversed(r["stdout"].splitlines()) if l.startswith("{")), None)
    if line is None:
        return None, "no JSON line on stdout"
    res = json.loads(line)
    res["cpu_s"] = r["cpu_s"]
    res["rss_mb"] = r["rss_mb"]
    return res, None


# ---------------------------------------------------------------- workloads

def plan(quick):
    if quick:
        return {
            "rounds": 3,
            "produce": [(100, 100_000)],
            "compression": ["none", "lz4"],
            "consume": (100, 200_000),
            "latency": (10_000, 2),
        }
    return {
        "rounds": 3,
        "produce": [(100, 1_000_000), (1024, 200_000)],
        "compression": ["none", "lz4"],
        "consume": (100, 1_000_000),
        "latency": (10_000, 60),
    }


def common(bootstrap, topic):
    return ["--bootstrap", bootstrap, "--topic", topic, "--linger-ms", 5, "--batch-bytes", 1 << 20]


def ceiling(bootstrap, env, size, records, compression):
    topic = f"bench.ceiling.{size}.{compression}.{int(time.time() * 1000)}"
    create_topic(bootstrap, env, topic)
    out = sh(java_cmd("org.apache.kafka.tools.ProducerPerformance") + [
        "--topic", topic, "--num-records", str(records), "--record-size", str(size), "--throughput", "-1",
        "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all", "linger.ms=5",
        f"batch.size={1 << 20}", f"compression.type={compression}", "enable.idempotence=false",
        "buffer.memory=268435456"])
    last = [l for l in out.splitlines() if "records sent" in l][-1]
    m = re.search(r"([\d.]+) records/sec", last)
    return float(m.group(1)) if m else None


def run_all(quick):
    p = plan(quick)
    LOADS["start"] = [loadavg(), None]
    bootstrap, env = start_broker()
    results = []  # dicts with workload, client, round, ...
    failures = []
    try:
        peers = build_peers()
        order = [c for c in ("gregor", "gregor-worker", "rdkafka", "java", "kafka-go", "franz-go") if c in peers]
        # The Worker is a consumer: it runs in the consume workload only.
        clients = [c for c in order if c != "gregor-worker"]
        log(f"clients: {', '.join(order)}")
        ceilings = {}
        for size, records in p["produce"]:
            for comp in p["compression"]:
                wl = f"produce {records:,} x {size} B, {comp}"
                note_load(wl)
                for rnd in range(p["rounds"]):
                    for client in clients:
                        topic = f"bench.p.{client}.{size}.{comp}.{rnd}.{int(time.time() * 1000)}"
                        create_topic(bootstrap, env, topic)
                        log(f"{wl}: round {rnd + 1}, {client}")
                        res, err = measure(peers[client], ["--mode", "produce", "--records", records, "--size", size,
                                                           "--compression", comp] + common(bootstrap, topic), 900)
                        record(results, failures, wl, client, rnd, res, err)
                ceilings[wl] = ceiling(bootstrap, env, size, records, comp)
        size, records = p["consume"]
        wl = f"consume {records:,} x {size} B"
        note_load(wl)
        topic = f"bench.c.{int(time.time() * 1000)}"
        create_topic(bootstrap, env, topic)
        log(f"filling {topic} for the consume runs")
        fill, err = measure(peers["java"], ["--mode", "produce", "--records", records, "--size", size,
                                            "--compression", "none"] + common(bootstrap, topic), 900)
        if err:
            raise SystemExit(f"filling the consume topic failed: {err}")
        for rnd in range(p["rounds"]):
            for client in order:
                log(f"{wl}: round {rnd + 1}, {client}")
                mode = "worker" if client == "gregor-worker" else "consume"
                res, err = measure(peers[client], ["--mode", mode, "--records", records, "--size", size,
                                                   "--group", f"bench-{client}-{rnd}-{time.time_ns()}",
                                                   "--compression", "none"] + common(bootstrap, topic), 900)
                record(results, failures, wl, client, rnd, res, err)
        rate, secs = p["latency"]
        wl = f"end-to-end latency at {rate:,} rec/s for {secs} s"
        note_load(wl)
        for rnd in range(p["rounds"]):
            for client in clients:
                topic = f"bench.l.{client}.{rnd}.{int(time.time() * 1000)}"
                create_topic(bootstrap, env, topic)
                log(f"{wl}: round {rnd + 1}, {client}")
                res, err = measure(peers[client], ["--mode", "latency", "--rate", rate, "--seconds", secs,
                                                   "--size", 100, "--compression", "none",
                                                   "--group", f"lat-{client}-{rnd}-{time.time_ns()}"]
                                   + common(bootstrap, topic), secs + 120)
                record(results, failures, wl, client, rnd, res, err)
        return results, failures, ceilings, order
    finally:
        stop_broker(env)


def loadavg():
    """The 1-minute load average, or None where /proc is not there."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


LOADS = {}  # workload -> [load at start, load at end]


def note_load(wl, end=False):
    cur = loadavg()
    entry = LOADS.setdefault(wl, [cur, cur])
    if end:
        entry[1] = cur


def record(results, failures, wl, client, rnd, res, err):
    note_load(wl, end=True)
    if err:
        log(f"  {client} failed: {err}")
        failures.append((wl, client, rnd, err))
        return
    res.update(workload=wl, client=client, round=rnd)
    results.append(res)
    if res.get("seconds"):
        log(f"  {res['records'] / res['seconds']:,.0f} rec/s, cpu {res['cpu_s']:.2f} s, rss {res['rss_mb']:.0f} MB")


# ---------------------------------------------------------------- report

def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(l for l in f if l.startswith("MemTotal")).split()[1])
            mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        pass
    def version(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except OSError:
            return "not found"
    return {
        "cpu": f"{os.cpu_count()} cores, {model}",
        "memory": mem,
        "kernel": platform.release(),
        "rustc": version(["rustc", "--version"]),
        "go": version(["go", "version"]),
        "java": version(["java", "-version"]),
        "kafka": os.path.basename(os.path.dirname(kafka_libs())),
    }


def summarize(results, order):
    rows = []
    by = {}
    for r in results:
        by.setdefault((r["workload"], r["client"]), []).append(r)
    workloads = []
    for r in results:
        if r["workload"] not in workloads:
            workloads.append(r["workload"])
    for wl in workloads:
        for client in order:
            runs = by.get((wl, client))
            if not runs:
                continue
            rate = [x["records"] / x["seconds"] for x in runs if x["seconds"] > 0]
            mbps = [x["bytes"] / x["seconds"] / 1e6 for x in runs if x["seconds"] > 0]
            cpu_us = [x["cpu_s"] / max(x["records"], 1) * 1e6 for x in runs]
            rows.append({
                "workload": wl, "client": client, "runs": len(runs),
                "rate": statistics.median(rate) if rate else 0, "rate_min": min(rate, default=0), "rate_max": max(rate, default=0),
                "mbps": statistics.median(mbps) if mbps else 0,
                "cpu_s": statistics.median(x["cpu_s"] for x in runs),
                "cpu_us": statistics.median(cpu_us), "cpu_us_min": min(cpu_us), "cpu_us_max": max(cpu_us),
                "rss": max(x["rss_mb"] for x in runs),
                "p50": statistics.median(x.get("p50_ms", 0) for x in runs),
                "p99": statistics.median(x.get("p99_ms", 0) for x in runs),
                "p999": statistics.median(x.get("p999_ms", 0) for x in runs),
                "errors": sum(x.get("errors", 0) for x in runs),
            })
    return rows, workloads


def write_report(results, failures, ceilings, order, quick):
    rows, workloads = summarize(results, order)
    m = machine()
    lines = [
        "<!-- bench:begin (written by bench/run.py; edit the script, not this section) -->",
        "## Clients side by side",
        "",
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC with "
        f"`{'just bench-quick' if quick else 'just bench'}`: one fresh single-node Kafka, every client on it, "
        "interleaved rounds (each client once per round, same order), medians with min-max.",
        "",
        f"Machine: {m['cpu']}, {m['memory']}, Linux {m['kernel']}. **The machine has {os.cpu_count()} cores, shared "
        "by the broker and the client under test**, so wall-clock figures are disturbed by the broker's own work "
        "(and by anything else running); CPU per record (user + sys of the client process, from wait4) is the "
        "steadier comparison.",
        f"Load average (1 min): {fmt_load(LOADS.get('start', [None])[0])} at the start of the run, "
        f"{fmt_load(loadavg())} at its end; per workload below.",
        f"Versions: {m['kafka']}, {m['rustc']}, {m['go']}, {m['java']}.",
        "Settings for every client: acks=all, linger 5 ms, batches up to 1 MiB, keyed records "
        "(10,000 keys), idempotence off, 6 partitions.",
        "",
        "![records per second by client and workload](benchmarks.svg)",
        "",
    ]
    for wl in workloads:
        wl_rows = [r for r in rows if r["workload"] == wl]
        ref = next((r for r in wl_rows if r["client"] == "rdkafka"), None)
        lines.append(f"### {wl}")
        lines.append("")
        start_load, end_load = LOADS.get(wl, [None, None])
        lines.append(f"Load average (1 min): {fmt_load(start_load)} at the start, {fmt_load(end_load)} at the end.")
        lines.append("")
        if wl.startswith("end-to-end"):
            lines.append("| client | p50 ms | p99 ms | p99.9 ms | CPU s | peak RSS MB | runs |")
            lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
            for r in wl_rows:
                lines.append(f"| {r['client']} | {r['p50']:.1f} | {r['p99']:.1f} | {r['p999']:.1f} | "
                             f"{r['cpu_s']:.2f} | {r['rss']:.0f} | {r['runs']} |")
        else:
            ceil = ceilings.get(wl)
            head = "| client | records/s (min-max) | MB/s | CPU s | CPU µs/record | peak RSS MB | vs librdkafka |"
            sep = "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
            if ceil:
                head += " vs broker ceiling |"
                sep += " ---: |"
            lines += [head, sep]
            for r in wl_rows:
                ratio = f"{r['rate'] / ref['rate']:.2f}x" if ref and ref["rate"] else "-"
                row = (f"| {r['client']} | {r['rate']:,.0f} ({r['rate_min']:,.0f}-{r['rate_max']:,.0f}) | "
                       f"{r['mbps']:.1f} | {r['cpu_s']:.2f} | {r['cpu_us']:.2f} | {r['rss']:.0f} | {ratio} |")
                if ceil:
                    row += f" {r['rate'] / ceil:.2f} |"
                lines.append(row)
            if ceil:
                lines.append("")
                lines.append(f"Broker ceiling (Kafka's ProducerPerformance, same settings): {ceil:,.0f} records/s.")
        lines.append("")
    lines += ratios_section(rows, workloads, ceilings)
    if failures:
        lines.append("### Runs that failed")
        lines.append("")
        for wl, client, rnd, err in failures:
            lines.append(f"- {wl}, {client}, round {rnd + 1}: {err}")
        lines.append("")
    lines.append("<!-- bench:end -->")
    section = "\n".join(lines)
    text = open(DOC).read() if os.path.exists(DOC) else "# Benchmarks\n"
    if "<!-- bench:begin" in text:
        text = re.sub(r"<!-- bench:begin.*?<!-- bench:end -->", lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    with open(DOC, "w") as f:
        f.write(text)
    write_svg(rows, workloads, order)
    with open(os.path.join(TARGET, "results.json"), "w") as f:
        json.dump({"results": results, "failures": failures, "ceilings": ceilings}, f, indent=1)
    log(f"wrote {DOC} and {SVG}")


def fmt_load(v):
    return "n/a" if v is None else f"{v:.2f}"


PEERS = (("rdkafka", "librdkafka"), ("kafka-go", "kafka-go"), ("franz-go", "franz-go"), ("java", "Java"))


def ratios_section(rows, workloads, ceilings):
    """gregor against each peer, within this run, and the issue's targets it misses."""
    def row(wl, client):
        return next((r for r in rows if r["workload"] == wl and r["client"] == client), None)

    out = ["### gregor against the peers (same run)", "",
           "Throughput ratios above 1 favour gregor; CPU/record and p99 ratios below 1 favour gregor.", "",
           "| workload | figure | " + " | ".join(f"gregor / {name}" for _, name in PEERS) + " |",
           "| --- | --- | " + " | ".join("---:" for _ in PEERS) + " |"]
    short = []
    targets = {"rdkafka", "kafka-go"}

    def add(wl, figure, key, higher_better, fmt):
        g = row(wl, "gregor")
        if not g or not g[key]:
            return
        cells = []
        for client, name in PEERS:
            r = row(wl, client)
            if not r or not r[key]:
                cells.append("-")
                continue
            ratio = g[key] / r[key]
            cells.append(f"{ratio:.2f}")
            worse = ratio < 1 if higher_better else ratio > 1
            # Issue 8: >= librdkafka on throughput and CPU/record, p99 no worse; ahead of kafka-go everywhere.
            if client in targets and worse:
                gap = (1 - ratio) * 100 if higher_better else (ratio - 1) * 100
                short.append(f"- **falls short**: {wl}, {figure}: gregor {fmt(g[key])} against {name} "
                             f"{fmt(r[key])}, {gap:.0f} % {'lower' if higher_better else 'higher'}.")
        out.append(f"| {wl} | {figure} | " + " | ".join(cells) + " |")

    for wl in workloads:
        if wl.startswith("end-to-end"):
            add(wl, "p99 latency", "p99", False, lambda v: f"{v:.1f} ms")
            add(wl, "CPU s", "cpu_s", False, lambda v: f"{v:.2f} s")
        else:
            add(wl, "records/s", "rate", True, lambda v: f"{v:,.0f} rec/s")
            add(wl, "CPU µs/record", "cpu_us", False, lambda v: f"{v:.2f} µs")
    out.append("")
    ceiling_lines = []
    for wl in workloads:
        ceil = ceilings.get(wl)
        if not ceil:
            continue
        parts = [f"{r['client']} {r['rate'] / ceil:.2f}" for r in rows if r["workload"] == wl and r["rate"]]
        ceiling_lines.append(f"- {wl}: ceiling {ceil:,.0f} rec/s; " + ", ".join(parts))
    if ceiling_lines:
        out += ["Each client as a fraction of the Java ProducerPerformance ceiling (ProducerPerformance sends its "
                "own random-letter values of the same size; the clients send the shared text-like values):", ""] \
            + ceiling_lines + [""]
        over = sorted({r["client"] for r in rows for wl in workloads
                       if r["workload"] == wl and ceilings.get(wl) and r["rate"] > ceilings[wl]})
        if over:
            out += [f"Fractions above 1 ({', '.join(over)}): on this machine ProducerPerformance is bound by its "
                    "own client (one Java producer sharing the two cores with the broker, several CPU seconds "
                    "per million records, see the java rows), not by the broker, so it understates what the "
                    "broker accepts; it is kept as the issue's reference point, not read as a hard ceiling.", ""]
    worker = [r for r in rows if r["client"] == "gregor-worker" and r["workload"].startswith("consume")]
    for w in worker:
        g = row(w["workload"], "gregor")
        if g and g["rate"]:
            out += [f"gregor's Worker (default middleware, no-op handler) against the bare gregor consumer, "
                    f"{w['workload']}: {w['rate'] / g['rate']:.2f} of its records/s, "
                    f"{w['cpu_us'] / g['cpu_us']:.2f}x its CPU per record.", ""]
    if short:
        out += ["Targets of issue 8 that gregor misses in this run:", ""] + short + [""]
    elif any(r["client"] == "gregor" for r in rows):
        out += ["gregor meets every target of issue 8 that this run measured.", ""]
    return out


def write_svg(rows, workloads, order):
    """Three panels, one bar per client and workload with min-max whiskers: records/s and CPU
    per record of the throughput workloads, p50/p99 of the latency run."""
    colors = {"gregor": "#d9480f", "gregor-worker": "#f08c00", "rdkafka": "#1c7ed6", "java": "#5c940d",
              "kafka-go": "#7048e8", "franz-go": "#0ca678"}
    tput = [w for w in workloads if not w.startswith("end-to-end")]
    lat = [w for w in workloads if w.startswith("end-to-end")]
    group_w, left, panel_h = 190, 70, 230
    width = max(len(tput), 2) * group_w + left + 30
    panels = []
    if tput:
        panels.append(("records/s (median, min-max of the rounds), higher is better", tput,
                       "rate", "rate_min", "rate_max", lambda v: f"{v / 1000:,.0f}k", short_label))
        panels.append(("client CPU µs per record (median, min-max), lower is better", tput,
                       "cpu_us", "cpu_us_min", "cpu_us_max", lambda v: f"{v:.1f}", short_label))
    if lat:
        panels.append(("end-to-end latency ms at a fixed rate: p50, p99 and p99.9, lower is better",
                       ["p50", "p99", "p999"], None, None, None, lambda v: f"{v:.0f}",
                       lambda m: {"p50": "p50", "p99": "p99", "p999": "p99.9"}[m]))
    height = len(panels) * (panel_h + 60) + 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    y_top = 10
    for title, groups, key, kmin, kmax, fmt, label in panels:
        def cell(group, client):
            if key is None:  # latency: groups are percentiles of the one latency workload
                r = next((r for r in rows if r["workload"] == lat[0] and r["client"] == client), None)
                return (r[group], None, None) if r and r[group] else None
            r = next((r for r in rows if r["workload"] == group and r["client"] == client), None)
            return (r[key], r[kmin], r[kmax]) if r and r[key] else None
        cells = {(g, c): cell(g, c) for g in groups for c in order}
        top = max((max(v[0], v[2] or 0) for v in cells.values() if v), default=1) or 1
        plot_top, plot_h = y_top + 22, panel_h - 40
        out.append(f'<text x="{left}" y="{y_top + 12}" font-size="13">{title}</text>')
        for i in range(5):
            y = plot_top + plot_h - plot_h * i / 4
            out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 20}" y2="{y:.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt(top * i / 4)}</text>')
        for gi, g in enumerate(groups):
            x0 = left + 10 + gi * group_w
            present = [c for c in order if cells[(g, c)]]
            bar_w = (group_w - 30) / max(len(present), 1)
            for ci, client in enumerate(present):
                v = cells[(g, client)]
                if not v:
                    continue
                x = x0 + ci * bar_w
                h = plot_h * v[0] / top
                out.append(f'<rect x="{x:.1f}" y="{plot_top + plot_h - h:.1f}" width="{bar_w - 3:.1f}" '
                           f'height="{h:.1f}" fill="{colors.get(client, "#888")}"><title>{client}: '
                           f'{fmt(v[0])}</title></rect>')
                if v[1] is not None and v[2] is not None:
                    cx = x + (bar_w - 3) / 2
                    y_min = plot_top + plot_h - plot_h * v[1] / top
                    y_max = plot_top + plot_h - plot_h * v[2] / top
                    out.append(f'<line x1="{cx:.1f}" y1="{y_min:.1f}" x2="{cx:.1f}" y2="{y_max:.1f}" stroke="#222"/>')
            out.append(f'<text x="{x0 + (group_w - 30) / 2:.1f}" y="{plot_top + plot_h + 16}" '
                       f'text-anchor="middle">{label(g)}</text>')
        y_top += panel_h + 60
    for ci, client in enumerate(order):
        out.append(f'<rect x="{left + ci * 110}" y="{height - 26}" width="10" height="10" fill="{colors.get(client, "#888")}"/>')
        out.append(f'<text x="{left + ci * 110 + 14}" y="{height - 17}">{client}</text>')
    out.append("</svg>")
    with open(SVG, "w") as f:
        f.write("\n".join(out) + "\n")


def short_label(wl):
    """'produce 1,000,000 x 100 B, none' -> 'P 1M x 100 B, none'."""
    wl = wl.replace("produce ", "P ").replace("consume ", "C ")
    return re.sub(r"(\d{1,3}),000 ", r"\1k ", re.sub(r"(\d{1,3}),000,000 ", r"\1M ", wl))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smaller run, under 3 minutes")
    args = ap.parse_args()
    started = time.monotonic()
    results, failures, ceilings, order = run_all(args.quick)
    write_report(results, failures, ceilings, order, args.quick)
    log(f"done in {time.monotonic() - started:.0f} s")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
