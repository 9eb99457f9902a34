//! Capture filters: tcpdump syntax, compiled to classic BPF by tcpdump itself.
//!
//! Writing a pcap-filter compiler would be a project of its own; the appliance image ships
//! tcpdump, whose `-ddd` prints the compiled program as decimal numbers. We run it once at
//! start-up (never on the hot path) and attach the program with SO_ATTACH_FILTER. The
//! program's accept value is the snaplen, which is how the kernel truncates packets.
//!
//! VLAN: the kernel strips the outer 802.1Q/802.1ad tag into skb metadata before socket
//! filters run, so a program compiled for a pcap file (`-y EN10MB`), which reads the tag
//! from the packet bytes, never matches `vlan 100` on live traffic. Compiled for the live
//! interface (`-i IF`), libpcap emits BPF ancillary loads instead (SKF_AD_VLAN_TAG_PRESENT
//! and SKF_AD_VLAN_TAG, tcpdump's `vlanp` / `vlan_tci`), falling back to the packet bytes
//! when no tag was stripped. So the capture compiles once per interface, in the
//! interface's network namespace, with `-p` so the compile does not toggle promiscuous mode.

use std::process::Command;

use crate::sys::packet::BpfInsn;

/// The kernel's limit on classic BPF program length (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;
/// Snaplen at and above which no truncating program is needed.
pub const MAX_SNAPLEN: u32 = 262_144;
const BPF_RET_K: u16 = 0x06;

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error(
        "cannot run tcpdump to compile the capture filter ({0}); install tcpdump or drop the filter"
    )]
    NoTcpdump(std::io::Error),
    #[error("invalid capture filter `{expr}`: {message}")]
    Invalid { expr: String, message: String },
    #[error("tcpdump printed a program we cannot read (line {line}: `{text}`)")]
    BadOutput { line: usize, text: String },
}

/// The program to attach for `expr` (tcpdump syntax, empty = everything) and `snaplen`;
/// empty when nothing needs filtering or truncating. With `iface`, compiled for that live
/// interface (see the module docs on VLAN tags); without, for an Ethernet pcap file.
pub fn compile(expr: &str, snaplen: u32, iface: Option<&str>) -> Result<Vec<BpfInsn>, FilterError> {
    let expr = expr.trim();
    if expr.is_empty() {
        if snaplen >= MAX_SNAPLEN {
            return Ok(Vec::new());
        }
        return Ok(vec![BpfInsn {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: snaplen,
        }]);
    }
    let mut cmd = Command::new("tcpdump");
    match iface {
        Some(name) => cmd.args(["-i", name, "-p"]),
        None => cmd.args(["-y", "EN10MB"]),
    };
    let out = cmd
        .args(["-ddd", "-s"])
        .arg(snaplen.min(MAX_SNAPLEN).to_string())
        .arg("--")
        .arg(expr)
        .output()
        .map_err(FilterError::NoTcpdump)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let message = err
            .lines()
            .map(|l| l.trim_start_matches("tcpdump: "))
            .find(|l| !l.trim().is_empty())
            .unwrap_or("tcpdump rejected it")
            .to_string();
        return Err(FilterError::Invalid {
            expr: expr.to_string(),
            message,
        });
    }
    parse_ddd(&String::from_utf8_lossy(&out.stdout)).and_then(|p| {
        if p.is_empty() || p.len() > MAX_INSNS {
            Err(FilterError::Invalid {
                expr: expr.to_string(),
                message: format!(
                    "compiled to {} instructions (1..={MAX_INSNS} allowed)",
                    p.len()
                ),
            })
        } else {
            Ok(p)
        }
    })
}

/// Parses tcpdump `-ddd` output: a count line, then `code jt jf k` per instruction.
pub fn parse_ddd(text: &str) -> Result<Vec<BpfInsn>, FilterError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let bad = |line: usize, text: &str| FilterError::BadOutput {
        line: line + 1,
        text: text.to_string(),
    };
    let (n0, first) = lines.next().ok_or_else(|| bad(0, ""))?;
    let count: usize = first.trim().parse().map_err(|_| bad(n0, first))?;
    if count > MAX_INSNS {
        return Err(bad(n0, first));
    }
    let mut prog = Vec::with_capacity(count);
    for (n, l) in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        let insn = match f.as_slice() {
            [c, t, e, k] => BpfInsn {
                code: c.parse().map_err(|_| bad(n, l))?,
                jt: t.parse().map_err(|_| bad(n, l))?,
                jf: e.parse().map_err(|_| bad(n, l))?,
                k: k.parse().map_err(|_| bad(n, l))?,
            },
            _ => return Err(bad(n, l)),
        };
        prog.push(insn);
    }
    if prog.len() != count {
        return Err(bad(0, first));
    }
    Ok(prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcpdump_ddd_output() {
        let p = parse_ddd("4\n40 0 0 12\n21 0 1 2048\n6 0 0 96\n6 0 0 0\n").unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(
            p[1],
            BpfInsn {
                code: 21,
                jt: 0,
                jf: 1,
                k: 2048
            }
        );
        assert_eq!(p[2].k, 96);
    }

    #[test]
    fn rejects_inconsistent_output() {
        assert!(parse_ddd("3\n6 0 0 1\n").is_err());
        assert!(parse_ddd("1\n6 0 x 1\n").is_err());
        assert!(parse_ddd("").is_err());
    }

    #[test]
    fn no_filter_only_truncates() {
        assert!(compile("", MAX_SNAPLEN, None).unwrap().is_empty());
        assert_eq!(
            compile(" ", 128, Some("lo")).unwrap(),
            vec![BpfInsn {
                code: 6,
                jt: 0,
                jf: 0,
                k: 128
            }]
        );
    }

    #[test]
    fn tcpdump_compiles_and_rejects() {
        // tcpdump is part of the appliance image and of .ci/packages.txt.
        let p = compile("udp port 53", 200, None).expect("tcpdump must be installed for this test");
        assert!(p.len() > 3);
        // The accept instruction carries the snaplen.
        assert!(p.iter().any(|i| i.code == 6 && i.k == 200));
        match compile("udp port", 200, None) {
            Err(FilterError::Invalid { message, .. }) => {
                assert!(message.contains("syntax"), "{message}")
            }
            other => panic!("expected an invalid-filter error, got {other:?}"),
        }
    }

    /// SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT, the load tcpdump prints as `[vlanp]`.
    const LOAD_VLAN_TAG_PRESENT: u32 = 0xffff_f000 + 48;

    #[test]
    fn a_live_interface_program_reads_the_stripped_tag_from_skb_metadata() {
        // Compiling for `lo` needs CAP_NET_RAW (CI runs as root); the pcap-file program
        // is the contrast: it can only look at the packet bytes.
        let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        });
        if !root {
            eprintln!("skipped: compiling for a live interface needs root");
            return;
        }
        let live = compile("vlan 100", 200, Some("lo")).expect("tcpdump -i lo");
        let file = compile("vlan 100", 200, None).expect("tcpdump -y EN10MB");
        let ld_abs_b = 0x30; // BPF_LD | BPF_B | BPF_ABS
        assert!(
            live.iter()
                .any(|i| i.code == ld_abs_b && i.k == LOAD_VLAN_TAG_PRESENT),
            "{live:?}"
        );
        assert!(!file.iter().any(|i| i.k == LOAD_VLAN_TAG_PRESENT));
    }
}
