//! Free ports on 127.0.0.1, chosen at start so parallel runs never collide on fixed numbers.

use std::net::TcpListener;

use crate::error::{IoContext, Result};

/// `n` distinct ports that were free a moment ago. All listeners are held until every port is
/// picked, so the kernel cannot hand the same port out twice; a race with another process is
/// still possible and is reported as [`crate::Error::PortInUse`] by the node that loses it.
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| {
            TcpListener::bind("127.0.0.1:0").context(|| "binding a free port on 127.0.0.1".into())
        })
        .collect::<Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .context(|| "reading a bound port".into())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_bindable() {
        let ports = free_ports(6).unwrap();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 6);
        for p in ports {
            assert_ne!(p, 0);
            TcpListener::bind(("127.0.0.1", p)).unwrap();
        }
    }
}
