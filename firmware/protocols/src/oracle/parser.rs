//! Pure TNS pieces: the packet header and the connect-data key/value text.

/// TNS packet types that matter here.
pub const TNS_CONNECT: u8 = 1;

/// (length, type) of a TNS packet header, if the 8 bytes look like one.
pub fn header(b: &[u8]) -> Option<(usize, u8)> {
    if b.len() < 8 {
        return None;
    }
    let len = u16::from_be_bytes([b[0], b[1]]) as usize;
    let ty = b[4];
    (len >= 8 && (1..=19).contains(&ty)).then_some((len, ty))
}

/// The value of `(KEY=value)` in connect data, searching from `from`; case-insensitive key.
pub fn value_after(s: &str, from: usize, key: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    let pat = format!("({}=", key.to_ascii_lowercase());
    let start = lower.get(from..)?.find(&pat)? + from + pat.len();
    let end = s[start..].find(')').map_or(s.len(), |e| start + e);
    let v = s[start..end].trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// Connect-data fields: (service name or SID, host, program, user).
#[derive(Debug, Default, PartialEq)]
pub struct ConnectData {
    pub service_name: Option<String>,
    pub host: Option<String>,
    pub client_host: Option<String>,
    pub program: Option<String>,
    pub user: Option<String>,
}

pub fn connect_data(s: &str) -> ConnectData {
    let lower = s.to_ascii_lowercase();
    let addr = lower.find("(address=");
    let cid = lower.find("(cid=");
    ConnectData {
        service_name: value_after(s, 0, "SERVICE_NAME").or_else(|| value_after(s, 0, "SID")),
        host: addr.and_then(|a| value_after(s, a, "HOST")),
        client_host: cid.and_then(|c| value_after(s, c, "HOST")),
        program: value_after(s, 0, "PROGRAM"),
        user: cid.and_then(|c| value_after(s, c, "USER")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlplus_connect_string() {
        let s = "(DESCRIPTION=(CONNECT_DATA=(SERVICE_NAME=ORCLPDB1)(CID=(PROGRAM=C:\\app\\sqlplus.exe)(HOST=PC-0123)(USER=tanaka)))(ADDRESS=(PROTOCOL=TCP)(HOST=10.1.2.3)(PORT=1521)))";
        let c = connect_data(s);
        assert_eq!(c.service_name.as_deref(), Some("ORCLPDB1"));
        assert_eq!(c.host.as_deref(), Some("10.1.2.3"));
        assert_eq!(c.client_host.as_deref(), Some("PC-0123"));
        assert_eq!(c.program.as_deref(), Some("C:\\app\\sqlplus.exe"));
        assert_eq!(c.user.as_deref(), Some("tanaka"));
        assert_eq!(
            connect_data("(CONNECT_DATA=(SID=XE))")
                .service_name
                .as_deref(),
            Some("XE")
        );
    }
}
