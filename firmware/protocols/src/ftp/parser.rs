//! Pure FTP pieces: command and reply lines, and the address forms of PORT, EPRT,
//! 227 and 229 (RFC 959, RFC 2428).

use std::net::{IpAddr, Ipv4Addr};

/// A command line split into an upper-case verb and its argument.
pub fn command(line: &[u8]) -> (String, &[u8]) {
    let sp = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let verb = String::from_utf8_lossy(&line[..sp.min(16)]).to_ascii_uppercase();
    let arg = if sp < line.len() {
        &line[sp + 1..]
    } else {
        &[][..]
    };
    (verb, arg)
}

/// Reply code of a reply line (`230 Login successful.`, `226-…`), if it is one.
pub fn reply_code(line: &[u8]) -> Option<(u16, bool)> {
    if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code =
        (line[0] - b'0') as u16 * 100 + (line[1] - b'0') as u16 * 10 + (line[2] - b'0') as u16;
    let more = line.get(3) == Some(&b'-');
    Some((code, more))
}

/// `h1,h2,h3,h4,p1,p2` (PORT argument and inside a 227 reply).
pub fn host_port_6(s: &[u8]) -> Option<(Ipv4Addr, u16)> {
    // Find the first run of digits and commas containing 5 commas.
    let text = String::from_utf8_lossy(s);
    for start in text
        .char_indices()
        .filter(|(_, c)| c.is_ascii_digit())
        .map(|(i, _)| i)
    {
        let run: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .collect();
        let nums: Vec<&str> = run.split(',').collect();
        if nums.len() >= 6 {
            let v: Option<Vec<u8>> = nums[..6].iter().map(|n| n.parse::<u8>().ok()).collect();
            let v = v?;
            return Some((
                Ipv4Addr::new(v[0], v[1], v[2], v[3]),
                u16::from(v[4]) << 8 | u16::from(v[5]),
            ));
        }
        if start > 256 {
            break;
        }
    }
    None
}

/// EPRT argument `|1|132.235.1.2|6275|` or `|2|::1|6275|`.
pub fn eprt(s: &[u8]) -> Option<(IpAddr, u16)> {
    let text = std::str::from_utf8(s).ok()?.trim();
    let d = text.chars().next()?;
    let parts: Vec<&str> = text.split(d).collect();
    if parts.len() < 4 {
        return None;
    }
    let ip: IpAddr = parts[2].parse().ok()?;
    let port: u16 = parts[3].parse().ok()?;
    Some((ip, port))
}

/// Port of a 229 reply: `229 Entering Extended Passive Mode (|||6446|)`.
pub fn epsv_port(line: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(line).ok()?;
    let open = text.find('(')?;
    let close = text[open..].find(')')? + open;
    let inner = &text[open + 1..close];
    let d = inner.chars().next()?;
    inner.split(d).rfind(|p| !p.is_empty())?.parse().ok()
}

/// Size announced in a 150 reply: `150 Opening BINARY mode data connection for x (1234 bytes).`
pub fn announced_size(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    let open = text.rfind('(')?;
    let inner = &text[open + 1..];
    let num = inner.split_whitespace().next()?;
    if inner.contains("bytes") {
        num.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_forms() {
        assert_eq!(
            host_port_6(b"227 Entering Passive Mode (192,168,1,10,195,80)."),
            Some((Ipv4Addr::new(192, 168, 1, 10), 195 * 256 + 80))
        );
        assert_eq!(
            host_port_6(b"10,0,0,5,4,1"),
            Some((Ipv4Addr::new(10, 0, 0, 5), 1025))
        );
        assert_eq!(
            host_port_6(b"227 Entering Passive Mode (300,1,1,1,1,1)"),
            None
        );
        assert_eq!(
            eprt(b"|1|132.235.1.2|6275|"),
            Some(("132.235.1.2".parse().unwrap(), 6275))
        );
        assert_eq!(eprt(b"|2|::1|6275|"), Some(("::1".parse().unwrap(), 6275)));
        assert_eq!(
            epsv_port(b"229 Entering Extended Passive Mode (|||6446|)"),
            Some(6446)
        );
        assert_eq!(
            announced_size(b"150 Opening BINARY mode data connection for a.bin (1048576 bytes)."),
            Some(1048576)
        );
        assert_eq!(reply_code(b"230-Welcome"), Some((230, true)));
        assert_eq!(
            command(b"retr report.pdf"),
            ("RETR".to_string(), &b"report.pdf"[..])
        );
    }
}
