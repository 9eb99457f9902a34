//! Pure TNS pieces: the packet header and the connect-data key/value text.

/// TNS packet types that matter here.
pub const TNS_CONNECT: u8 = 1;
pub const TNS_ACCEPT: u8 = 2;

/// The database version a `VSNNUM` encodes (`318767104` = `0x13000000` → `19.0.0.0.0`:
/// major, maintenance, application-server, component and platform release, as the
/// listener's own banner writes them). `0` says nothing.
pub fn vsnnum_version(n: u32) -> Option<String> {
    (n != 0).then(|| {
        format!(
            "{}.{}.{}.{}.{}",
            n >> 24,
            (n >> 20) & 0xF,
            (n >> 12) & 0xFF,
            (n >> 8) & 0xF,
            n & 0xFF
        )
    })
}

/// The version a listener's answer announces: `(VSNNUM=n)` of a REFUSE/REDIRECT
/// descriptor, or `TNSLSNR for <os>: Version 19.0.0.0.0` of a status/version answer.
/// `None` until the value is complete (its closing parenthesis or separator seen).
pub fn server_version(s: &str) -> Option<String> {
    if let Some(v) = value_after(s, 0, "VSNNUM")
        && s[s.to_ascii_uppercase().find("(VSNNUM=")?..].contains(')')
    {
        return v.parse::<u32>().ok().and_then(vsnnum_version);
    }
    let at = s.find("TNSLSNR for ")?;
    let rest = &s[at..];
    let v = rest.find("Version ")? + "Version ".len();
    let version: String = rest[v..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let complete = rest[v + version.len()..].starts_with([' ', ')', '\n', '\r', '-']);
    (complete && !version.is_empty()).then_some(version)
}

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
    fn listener_versions() {
        assert_eq!(vsnnum_version(318767104).as_deref(), Some("19.0.0.0.0"));
        assert_eq!(vsnnum_version(186646784).as_deref(), Some("11.2.0.1.0"));
        assert_eq!(vsnnum_version(0), None);
        let refuse = "(DESCRIPTION=(TMP=)(VSNNUM=186647040)(ERR=12514)(ERROR_STACK=(ERROR=(CODE=12514)(EMFI=4))))";
        assert_eq!(server_version(refuse).as_deref(), Some("11.2.0.2.0"));
        assert_eq!(server_version("(DESCRIPTION=(TMP=)(VSNNUM=1866"), None);
        assert_eq!(server_version("(VSNNUM=junk)"), None);
        assert_eq!(
            server_version("TNSLSNR for Linux: Version 19.0.0.0.0 - Production").as_deref(),
            Some("19.0.0.0.0")
        );
        assert_eq!(server_version("TNSLSNR for Linux: Version 19.0"), None);
        assert_eq!(server_version("(VSNNUM=0)"), None);
    }

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
