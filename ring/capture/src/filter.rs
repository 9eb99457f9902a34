//! Capture filters: tcpdump syntax, compiled to classic BPF by tcpdump itself.
//!
//! Writing a pcap-filter compiler would be a project of its own; the appliance image ships
//! tcpdump, whose `-ddd` prints the compiled program as decimal numbers. We run it once at
//! start-up (never on the hot path) and attach the program with SO_ATTACH_FILTER. The
//! program's accept value is the snaplen, which is how the kernel truncates packets.
//!
//! Limitation: the program is compiled for a pcap file (`-y EN10MB`), so `vlan` primitives
//! read the tag from the packet bytes; on Linux the kernel strips the outer tag before the
//! filter runs, so filters on the outer VLAN do not match live traffic.

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
/// empty when nothing needs filtering or truncating.
pub fn compile(expr: &str, snaplen: u32) -> Result<Vec<BpfInsn>, FilterError> {
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
    let out = Command::new("tcpdump")
        .args(["-ddd", "-y", "EN10MB", "-s"])
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
        assert!(compile("", MAX_SNAPLEN).unwrap().is_empty());
        assert_eq!(
            compile(" ", 128).unwrap(),
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
        let p = compile("udp port 53", 200).expect("tcpdump must be installed for this test");
        assert!(p.len() > 3);
        // The accept instruction carries the snaplen.
        assert!(p.iter().any(|i| i.code == 6 && i.k == 200));
        match compile("udp port", 200) {
            Err(FilterError::Invalid { message, .. }) => {
                assert!(message.contains("syntax"), "{message}")
            }
            other => panic!("expected an invalid-filter error, got {other:?}"),
        }
    }
}
