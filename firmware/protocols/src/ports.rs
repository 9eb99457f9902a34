//! Port-level labels: what a port usually carries on an office network.
//!
//! Used for protocols Kuroko does not parse (SMB, RDP, VPNs, databases, …) and as the
//! fallback when content identification cannot decide. Labels are the lower-case
//! `protocol` values of session records. The full label set Kuroko emits:
//!
//! - parsed (a parser fills a protocol object): `http`, `winrm`, `tls`, `dns`, `mdns`,
//!   `llmnr`, `ssh`, `ftp`, `ftp-data`, `smtp`, `pop3`, `imap`, `telnet`, `oracle`
//! - identified by content, not parsed: `http2` (h2c preface), `smb`, `rdp`, `vnc`, `mysql`, `postgresql`, `mssql`,
//!   `dhcp`, `quic`, `stun`, `wireguard`, `sip`, `ssdp`, `ntp`, `ike`
//! - by port only: everything in [`port_label`] below
//! - nothing known: the transport name (`tcp`, `udp`), set by the analyzer.

/// Label for a well-known port of `transport` (`tcp` or `udp`), if any.
pub fn port_label(transport: &str, port: u16) -> Option<&'static str> {
    match transport {
        "tcp" => tcp_port(port),
        "udp" => udp_port(port),
        _ => None,
    }
}

fn tcp_port(port: u16) -> Option<&'static str> {
    Some(match port {
        20 => "ftp-data",
        21 => "ftp",
        22 => "ssh",
        23 => "telnet",
        25 | 587 => "smtp",
        53 => "dns",
        80 | 8000 | 8008 | 8080 | 8081 | 3128 => "http",
        88 => "kerberos",
        110 => "pop3",
        111 => "rpcbind",
        119 => "nntp",
        135 => "msrpc",
        139 | 445 => "smb",
        143 => "imap",
        179 => "bgp",
        389 | 3268 => "ldap",
        443 | 8443 => "tls",
        464 => "kpasswd",
        465 => "smtps",
        514 => "rsh",
        515 => "lpd",
        548 => "afp",
        554 => "rtsp",
        631 => "ipp",
        636 | 3269 => "ldaps",
        853 => "dns-over-tls",
        873 => "rsync",
        989 | 990 => "ftps",
        993 => "imaps",
        995 => "pop3s",
        1080 => "socks",
        1194 => "openvpn",
        1433 => "mssql",
        1521 | 1526 | 2483 => "oracle",
        2484 => "oracle-tls",
        1723 => "pptp",
        1883 => "mqtt",
        8883 => "mqtts",
        2049 => "nfs",
        3306 => "mysql",
        3389 => "rdp",
        3690 => "svn",
        4433 | 10443 => "ssl-vpn",
        5060 => "sip",
        5061 => "sips",
        5222 | 5223 => "xmpp",
        5432 => "postgresql",
        5900..=5903 => "vnc",
        5938 => "teamviewer",
        5985 | 5986 => "winrm",
        6379 => "redis",
        7070 => "anydesk",
        8291 => "winbox",
        9100 => "jetdirect",
        9200 => "elasticsearch",
        9418 => "git",
        11211 => "memcached",
        27017 => "mongodb",
        _ => return None,
    })
}

fn udp_port(port: u16) -> Option<&'static str> {
    Some(match port {
        53 => "dns",
        67 | 68 => "dhcp",
        546 | 547 => "dhcpv6",
        69 => "tftp",
        88 => "kerberos",
        123 => "ntp",
        137 => "netbios-ns",
        138 => "netbios-dgm",
        161 | 162 => "snmp",
        389 => "cldap",
        443 => "quic",
        500 => "ike",
        4500 => "ipsec-nat-t",
        514 => "syslog",
        520 => "rip",
        1194 => "openvpn",
        1701 => "l2tp",
        1812 | 1813 => "radius",
        1900 => "ssdp",
        2055 | 9995 | 9996 => "netflow",
        3389 => "rdp",
        3478 | 19302 => "stun",
        3702 => "ws-discovery",
        4789 => "vxlan",
        5060 => "sip",
        5353 => "mdns",
        5355 => "llmnr",
        6081 => "geneve",
        10443 => "ssl-vpn",
        51820 => "wireguard",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn office_network_ports_have_labels() {
        assert_eq!(port_label("tcp", 445), Some("smb"));
        assert_eq!(port_label("tcp", 139), Some("smb"));
        assert_eq!(port_label("tcp", 3389), Some("rdp"));
        assert_eq!(port_label("udp", 500), Some("ike"));
        assert_eq!(port_label("udp", 4500), Some("ipsec-nat-t"));
        assert_eq!(port_label("udp", 1194), Some("openvpn"));
        assert_eq!(port_label("udp", 51820), Some("wireguard"));
        assert_eq!(port_label("tcp", 10443), Some("ssl-vpn"));
        assert_eq!(port_label("udp", 443), Some("quic"));
        assert_eq!(port_label("tcp", 5985), Some("winrm"));
        assert_eq!(port_label("tcp", 1521), Some("oracle"));
        assert_eq!(port_label("udp", 5353), Some("mdns"));
        assert_eq!(port_label("tcp", 40000), None);
        assert_eq!(port_label("icmp", 0), None);
    }
}
