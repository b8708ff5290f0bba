//! `gregor plan`: capacity planning from the classic formula.
//!
//! storage = daily throughput x retention days x replication factor;
//! network in = producer traffic + replication traffic, out = replication + consumer traffic.

use anyhow::anyhow;
use serde_json::json;

use crate::output::Output;
use crate::{CliResult, Failure};

/// Inputs of the plan.
#[derive(Debug, clap::Args)]
pub(crate) struct Plan {
    /// Records per second (sustained).
    #[arg(long, allow_negative_numbers = true)]
    rate: f64,
    /// Average record size in bytes (key + value + headers, after compression).
    #[arg(long, allow_negative_numbers = true)]
    size: f64,
    /// Days of retention.
    #[arg(long, default_value_t = 7.0, allow_negative_numbers = true)]
    retention_days: f64,
    /// Replication factor.
    #[arg(long, default_value_t = 3)]
    replication: u32,
    /// Consumer groups reading everything.
    #[arg(long, default_value_t = 1)]
    consumer_groups: u32,
}

/// What the plan computes, in bytes and bytes per second.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Capacity {
    pub(crate) ingress_bps: f64,
    pub(crate) daily_bytes: f64,
    pub(crate) storage_bytes: f64,
    pub(crate) replication_bps: f64,
    pub(crate) consumer_bps: f64,
    pub(crate) network_in_bps: f64,
    pub(crate) network_out_bps: f64,
}

pub(crate) fn capacity(p: &Plan) -> Result<Capacity, String> {
    for (name, v) in [
        ("--rate", p.rate),
        ("--size", p.size),
        ("--retention-days", p.retention_days),
    ] {
        if !v.is_finite() || v < 0.0 {
            return Err(format!("{name} must be a non-negative number, not {v}"));
        }
    }
    if p.replication == 0 {
        return Err("--replication must be at least 1".into());
    }
    let ingress = p.rate * p.size;
    let daily = ingress * 86_400.0;
    let replication = ingress * f64::from(p.replication - 1);
    let consumers = ingress * f64::from(p.consumer_groups);
    Ok(Capacity {
        ingress_bps: ingress,
        daily_bytes: daily,
        storage_bytes: daily * p.retention_days * f64::from(p.replication),
        replication_bps: replication,
        consumer_bps: consumers,
        network_in_bps: ingress + replication,
        network_out_bps: replication + consumers,
    })
}

/// Bytes in binary units (KiB, MiB, ...).
pub(crate) fn human(bytes: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

pub(crate) fn run(p: &Plan, out: &Output) -> CliResult {
    let c = capacity(p).map_err(|e| Failure::usage(anyhow!(e)))?;
    if out.json {
        out.json(&json!({
            "ingress_bytes_per_sec": c.ingress_bps,
            "daily_bytes": c.daily_bytes,
            "storage_bytes": c.storage_bytes,
            "replication_bytes_per_sec": c.replication_bps,
            "consumer_bytes_per_sec": c.consumer_bps,
            "network_in_bytes_per_sec": c.network_in_bps,
            "network_out_bytes_per_sec": c.network_out_bps,
        }));
        return Ok(());
    }
    let rows = vec![
        vec![
            "producer traffic".into(),
            format!("{}/s", human(c.ingress_bps)),
            format!("{} rec/s x {} B", p.rate, p.size),
        ],
        vec![
            "daily volume".into(),
            human(c.daily_bytes),
            "producer traffic x 86,400 s".into(),
        ],
        vec![
            "storage (cluster)".into(),
            human(c.storage_bytes),
            format!("daily x {} days x RF {}", p.retention_days, p.replication),
        ],
        vec![
            "replication traffic".into(),
            format!("{}/s", human(c.replication_bps)),
            format!("producer traffic x (RF {} - 1)", p.replication),
        ],
        vec![
            "consumer traffic".into(),
            format!("{}/s", human(c.consumer_bps)),
            format!("producer traffic x {} groups", p.consumer_groups),
        ],
        vec![
            "network in (cluster)".into(),
            format!("{}/s", human(c.network_in_bps)),
            "producers + replication".into(),
        ],
        vec![
            "network out (cluster)".into(),
            format!("{}/s", human(c.network_out_bps)),
            "replication + consumers".into(),
        ],
    ];
    out.table(&["what", "amount", "how"], &rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_formula() {
        let p = Plan {
            rate: 1000.0,
            size: 1024.0,
            retention_days: 7.0,
            replication: 3,
            consumer_groups: 2,
        };
        let c = capacity(&p).unwrap();
        assert_eq!(c.ingress_bps, 1_024_000.0);
        assert_eq!(c.daily_bytes, 1_024_000.0 * 86_400.0);
        assert_eq!(c.storage_bytes, 1_024_000.0 * 86_400.0 * 7.0 * 3.0);
        assert_eq!(c.replication_bps, 2_048_000.0);
        assert_eq!(c.network_in_bps, 3_072_000.0);
        assert_eq!(c.network_out_bps, 2_048_000.0 + 2_048_000.0);
        assert_eq!(human(c.storage_bytes), "1.7 TiB");
    }

    #[test]
    fn nonsense_is_refused() {
        let p = Plan {
            rate: -1.0,
            size: 1.0,
            retention_days: 1.0,
            replication: 3,
            consumer_groups: 1,
        };
        assert!(capacity(&p).unwrap_err().contains("--rate"));
    }
}
