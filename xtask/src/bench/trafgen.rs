//! trafgen (netsniff-ng's packet generator), shared by `bench capture` and `bench live`.
//!
//! One process (`-P1`) pinned to one CPU with `taskset`, IRQ affinity untouched (`-Q`), no
//! CPU statistics (`-C`). Without a rate it sends through a TX_RING with the qdisc bypassed
//! (top speed); with `-b Npps` it sends in its "slow mode" (one sendto(2) per packet,
//! paced to N packets/s; measured on a plain veth pair here: exact up to 200 k pkt/s, 94 %
//! of the asked rate at 500 k). trafgen complains that it cannot tune the socket memory
//! sysctls (per network namespace, read-only there): harmless.

/// The command line: `taskset -c CPU trafgen -o IFACE -i CFG -P1 -Q -C [-n COUNT] [-b PPSpps]`.
pub(crate) fn argv(
    iface: &str,
    cfg: &str,
    cpu: u32,
    pps: Option<u64>,
    count: Option<u64>,
) -> Vec<String> {
    let mut v: Vec<String> = [
        "taskset",
        "-c",
        &cpu.to_string(),
        "trafgen",
        "-o",
        iface,
        "-i",
        cfg,
        "-P1",
        "-Q",
        "-C",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(n) = count {
        v.extend(["-n".to_string(), n.to_string()]);
    }
    if let Some(p) = pps {
        v.extend(["-b".to_string(), format!("{p}pps")]);
    }
    v
}

/// The packets trafgen says it sent (its "N packets outgoing" line, printed when it ends
/// by itself after `-n` or on SIGINT).
pub(crate) fn packets_sent(output: &str) -> Option<u64> {
    output
        .lines()
        .find(|l| l.trim_end().ends_with("packets outgoing"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
}

/// A trafgen packet config with one Ethernet/IPv4/UDP frame of `frame_len` bytes (without
/// the FCS; at least 42), written out byte by byte with a valid IPv4 header checksum (the
/// UDP checksum is 0: none, legal for IPv4). `mac` and `ip` are (source, destination).
pub(crate) fn udp_config(
    mac: ([u8; 6], [u8; 6]),
    ip: ([u8; 4], [u8; 4]),
    ports: (u16, u16),
    frame_len: usize,
) -> String {
    let frame_len = frame_len.max(42);
    let mut f = Vec::with_capacity(frame_len);
    f.extend_from_slice(&mac.1);
    f.extend_from_slice(&mac.0);
    f.extend_from_slice(&[0x08, 0x00]);
    let ip_len = (frame_len - 14) as u16;
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&ip_len.to_be_bytes());
    h[6] = 0x40; // don't fragment
    h[8] = 64; // TTL
    h[9] = 17; // UDP
    h[12..16].copy_from_slice(&ip.0);
    h[16..20].copy_from_slice(&ip.1);
    let sum = ipv4_checksum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(&ports.0.to_be_bytes());
    f.extend_from_slice(&ports.1.to_be_bytes());
    f.extend_from_slice(&(ip_len - 20).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.resize(frame_len, b'x');
    let bytes: Vec<String> = f.iter().map(|b| format!("0x{b:02x}")).collect();
    format!("{{ {} }}\n", bytes.join(", "))
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut s: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// `a.b.c.d` as bytes.
pub(crate) fn ipv4(s: &str) -> anyhow::Result<[u8; 4]> {
    let a: std::net::Ipv4Addr = s.parse()?;
    Ok(a.octets())
}

/// `aa:bb:cc:dd:ee:ff` as bytes.
pub(crate) fn mac(s: &str) -> anyhow::Result<[u8; 6]> {
    let v: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16))
        .collect::<Result<_, _>>()?;
    v.try_into()
        .map_err(|_| anyhow::anyhow!("`{s}` is not a MAC address"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_header_checksum_of_a_known_header() {
        // The classic example header (Wikipedia, "IPv4 header checksum"): B861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(super::ipv4_checksum(&h), 0xb861);
    }

    #[test]
    fn a_udp_frame_has_the_asked_length_and_fields() {
        let cfg = super::udp_config(
            ([2, 0, 10, 10, 0, 10], [2, 0, 10, 10, 0, 20]),
            ([10, 10, 0, 10], [10, 10, 0, 20]),
            (40000, 9999),
            256,
        );
        let bytes: Vec<u8> = cfg
            .trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .split(',')
            .map(|b| u8::from_str_radix(b.trim().trim_start_matches("0x"), 16).unwrap())
            .collect();
        assert_eq!(bytes.len(), 256);
        assert_eq!(&bytes[0..6], &[2, 0, 10, 10, 0, 20]);
        assert_eq!(u16::from_be_bytes([bytes[16], bytes[17]]), 242);
        assert_eq!(
            super::ipv4_checksum(&bytes[14..34]),
            0,
            "header sums to 0xffff"
        );
        assert_eq!(u16::from_be_bytes([bytes[36], bytes[37]]), 9999);
        assert_eq!(u16::from_be_bytes([bytes[38], bytes[39]]), 222);
    }

    #[test]
    fn the_count_line_is_read() {
        let out = "     1 packets to schedule\n\n      150000 packets outgoing\n     9000000 bytes outgoing\n";
        assert_eq!(super::packets_sent(out), Some(150000));
        assert_eq!(super::packets_sent("Cannot set system socket memory"), None);
    }
}
