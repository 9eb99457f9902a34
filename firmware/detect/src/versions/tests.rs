use super::advisories::AdvisoryList;
use super::*;

fn v(t: &str) -> Version {
    Version::parse(t).unwrap()
}

#[test]
fn versions_order_like_their_releases() {
    assert!(v("9.2p1") < v("9.8"));
    assert!(v("9.8") < v("9.8p1"));
    assert!(v("9.8p1") < v("9.9"));
    assert!(v("9.9") < v("10.0p1"));
    assert!(v("2.4.9") < v("2.4.58"));
    assert!(v("1.3.5") < v("1.3.5a"));
    assert!(v("1.3.5a") < v("1.3.5e"));
    assert!(v("1.3.5e") < v("1.3.6"));
    assert!(v("2.3.7.2") < v("2.3.11.3"));
    assert!(v("2") < v("2+deb12u3"));
    assert!(v("2+deb12u2") < v("2+deb12u3"));
    assert!(v("3ubuntu0.4") < v("3ubuntu0.10"));
    assert_eq!(v("2.4.58").cmp(&v("2.4.58")), std::cmp::Ordering::Equal);
    for bad in [
        "",
        "latest",
        "p1",
        "9.8 p1",
        "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17",
    ] {
        assert_eq!(Version::parse(bad), None, "{bad}");
    }
}

#[test]
fn banners_name_product_version_and_distribution() {
    let id = |b: &str| identify(b).map(|s| s.to_string());
    let cases = [
        (
            "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
            Some("openssh 9.2p1 (Debian 2+deb12u3)"),
        ),
        (
            "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10",
            Some("openssh 8.9p1 (Ubuntu 3ubuntu0.10)"),
        ),
        ("SSH-2.0-OpenSSH_for_Windows_8.1", Some("openssh 8.1")),
        (
            "SSH-2.0-OpenSSH_8.0p1-19.el8_8",
            Some("openssh 8.0p1 (Red Hat 19.el8_8)"),
        ),
        ("SSH-2.0-dropbear_2022.83", None),
        (
            "Apache/2.4.57 (Debian)",
            Some("apache_httpd 2.4.57 (Debian)"),
        ),
        (
            "Apache/2.4.37 (Red Hat Enterprise Linux) OpenSSL/1.1.1k",
            Some("apache_httpd 2.4.37 (Red Hat)"),
        ),
        (
            "Apache/2.4.6 (CentOS)",
            Some("apache_httpd 2.4.6 (Red Hat)"),
        ),
        ("Apache/2.4.49 (Unix)", Some("apache_httpd 2.4.49")),
        ("Apache", Some("apache_httpd")),
        ("Apache-Coyote/1.1", None),
        ("nginx/1.18.0 (Ubuntu)", Some("nginx 1.18.0 (Ubuntu)")),
        ("nginx", Some("nginx")),
        ("Microsoft-IIS/10.0", Some("iis 10.0")),
        ("220 (vsFTPd 3.0.3)", Some("vsftpd 3.0.3")),
        (
            "220 ProFTPD 1.3.5 Server (Debian)",
            Some("proftpd 1.3.5 (Debian)"),
        ),
        (
            "220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------",
            Some("pure-ftpd"),
        ),
        (
            "220 mx.example.jp ESMTP Exim 4.96 Mon, 07 Dec 2026 10:00:00 +0900",
            Some("exim 4.96"),
        ),
        (
            "220 mx.example.jp ESMTP Postfix (Debian/GNU)",
            Some("postfix (Debian)"),
        ),
        (
            "220 mail.example.jp ESMTP Sendmail 8.15.2/8.15.2; Mon, 7 Dec 2026",
            Some("sendmail 8.15.2"),
        ),
        ("+OK Dovecot (Debian) ready.", Some("dovecot (Debian)")),
        (
            "TNSLSNR for Linux: Version 19.0.0.0.0 - Production",
            Some("oracle_tns 19.0.0.0.0"),
        ),
        ("Wget/1.21.3", None),
    ];
    for (banner, want) in cases {
        assert_eq!(id(banner).as_deref(), want, "{banner}");
    }
    // Hostile text neither panics nor identifies garbage.
    let long = format!("Apache/{}", "9".repeat(10_000));
    assert!(identify(&long).is_some_and(|s| s.version.is_none()));
    assert!(identify("Apache/\u{3042}\u{3044}").is_some_and(|s| s.version.is_none()));
}

/// The verdict of the advisory with `cve` on the software in `banner`.
fn verdict(list: &AdvisoryList, banner: &str, cve: &str) -> (Verdict, String) {
    let sw = identify(banner).unwrap_or_else(|| panic!("{banner} not identified"));
    let j = list
        .judge(&sw)
        .into_iter()
        .find(|j| j.advisory.cves.iter().any(|c| c == cve))
        .unwrap_or_else(|| panic!("{cve} not judged for {banner}"));
    (j.verdict, j.reason)
}

#[test]
fn real_banners_get_the_expected_verdicts() {
    use Verdict::*;
    let list = AdvisoryList::shipped();
    assert!(list.advisory.len() >= 30, "{}", list.advisory.len());
    let cases = [
        // Debian 12 before and after DSA-5724-1 (regreSSHion).
        (
            "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2",
            "CVE-2024-6387",
            Vulnerable,
        ),
        (
            "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
            "CVE-2024-6387",
            Fixed,
        ),
        (
            "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u7",
            "CVE-2024-6387",
            Fixed,
        ),
        (
            "SSH-2.0-OpenSSH_9.2p1 Debian-2",
            "CVE-2024-6387",
            Vulnerable,
        ),
        // Ubuntu 22.04 before and after USN-6859-1.
        (
            "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6",
            "CVE-2024-6387",
            Vulnerable,
        ),
        (
            "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10",
            "CVE-2024-6387",
            Fixed,
        ),
        // Terrapin on Ubuntu: the list has no Ubuntu fix, so it cannot tell.
        (
            "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10",
            "CVE-2023-48795",
            Unknown,
        ),
        // Debian 11's 8.4p1 predates the regression; RHEL 8's banner shows no distro.
        (
            "SSH-2.0-OpenSSH_8.4p1 Debian-5+deb11u3",
            "CVE-2024-6387",
            Fixed,
        ),
        ("SSH-2.0-OpenSSH_8.0", "CVE-2024-6387", Fixed),
        ("SSH-2.0-OpenSSH_8.0", "CVE-2023-48795", Vulnerable),
        ("SSH-2.0-OpenSSH_8.7p1-38.el9_4.1", "CVE-2024-6387", Unknown),
        ("SSH-2.0-OpenSSH_9.8p1 Debian-3", "CVE-2024-6387", Fixed),
        ("SSH-2.0-OpenSSH_9.9", "CVE-2024-6387", Fixed),
        (
            "SSH-2.0-OpenSSH_for_Windows_8.6",
            "CVE-2024-6387",
            Vulnerable,
        ),
        // Apache: upstream builds are judged, distribution builds without revision not.
        ("Apache/2.4.49 (Unix)", "CVE-2021-41773", Vulnerable),
        ("Apache/2.4.50", "CVE-2021-41773", Vulnerable),
        ("Apache/2.4.51", "CVE-2021-41773", Fixed),
        ("Apache/2.4.48", "CVE-2021-41773", Fixed),
        ("Apache/2.4.57 (Debian)", "CVE-2024-38476", Unknown),
        ("Apache/2.4.6 (CentOS)", "CVE-2023-25690", Unknown),
        ("Apache/2.4.62 (Debian)", "CVE-2024-38476", Fixed),
        ("Apache", "CVE-2024-38476", Unknown),
        // nginx branches.
        ("nginx/1.18.0 (Ubuntu)", "CVE-2021-23017", Unknown),
        ("nginx/1.18.0", "CVE-2021-23017", Vulnerable),
        ("nginx/1.22.1", "CVE-2022-41741", Fixed),
        ("nginx/1.23.1", "CVE-2022-41741", Vulnerable),
        ("nginx/1.23.2", "CVE-2022-41741", Fixed),
        // IIS and TNS: the fix is an update or setting no banner shows.
        ("Microsoft-IIS/8.5", "CVE-2015-1635", Unknown),
        ("Microsoft-IIS/10.0", "CVE-2015-1635", Fixed),
        ("Microsoft-IIS/6.0", "CVE-2017-7269", Vulnerable),
        (
            "TNSLSNR for Linux: Version 11.2.0.3.0 - Production",
            "CVE-2012-1675",
            Unknown,
        ),
        (
            "TNSLSNR for Linux: Version 19.0.0.0.0 - Production",
            "CVE-2012-1675",
            Fixed,
        ),
        // FTP and mail.
        ("220 (vsFTPd 2.3.4)", "CVE-2011-2523", Vulnerable),
        ("220 (vsFTPd 3.0.3)", "CVE-2015-1419", Fixed),
        (
            "220 ProFTPD 1.3.5 Server (ProFTPD)",
            "CVE-2015-3306",
            Vulnerable,
        ),
        ("220 ProFTPD 1.3.5e Server", "CVE-2019-12815", Fixed),
        ("220 ProFTPD 1.3.6 Server", "CVE-2019-12815", Vulnerable),
        (
            "220 mx ESMTP Exim 4.89 Mon, 7 Dec 2026",
            "CVE-2019-10149",
            Vulnerable,
        ),
        // Debian's exim4 4.96-15+deb12u2 and later carry the fix and still say `Exim 4.96`:
        // the banner cannot tell, so unknown; 4.95 no distribution ships fixed: vulnerable.
        (
            "220 mx ESMTP Exim 4.96 Mon, 7 Dec 2026",
            "CVE-2023-42115",
            Unknown,
        ),
        (
            "220 mx ESMTP Exim 4.95 Mon, 7 Dec 2026",
            "CVE-2023-42115",
            Vulnerable,
        ),
        (
            "220 mx ESMTP Exim 4.96 Mon, 7 Dec 2026",
            "CVE-2024-39929",
            Unknown,
        ),
        (
            "220 mx ESMTP Exim 4.98 Mon, 7 Dec 2026",
            "CVE-2024-39929",
            Fixed,
        ),
        (
            "220 mx ESMTP Postfix (Debian/GNU)",
            "CVE-2023-51764",
            Unknown,
        ),
        ("+OK Dovecot ready.", "CVE-2019-11500", Unknown),
        // FortiOS branches, including one that never got a fix.
        ("FortiOS v7.2.4", "CVE-2023-27997", Vulnerable),
        ("FortiOS v7.2.5", "CVE-2023-27997", Fixed),
        ("FortiOS v6.0.18", "CVE-2024-21762", Vulnerable),
        ("FortiOS v7.4.3", "CVE-2024-21762", Fixed),
    ];
    let mut wrong = Vec::new();
    for (banner, cve, want) in cases {
        let (got, reason) = verdict(&list, banner, cve);
        if got != want {
            wrong.push(format!("{banner} {cve}: {got:?} ({reason}), want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The reasons say why, in words a report can quote.
    let (_, r) = verdict(&list, "Apache/2.4.57 (Debian)", "CVE-2024-38476");
    assert!(r.contains("Debian may have backported"), "{r}");
    let (_, r) = verdict(
        &list,
        "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2",
        "CVE-2024-6387",
    );
    assert!(r.contains("older than Debian's fix 9.2p1-2+deb12u3"), "{r}");
    let (_, r) = verdict(
        &list,
        "220 mx ESMTP Exim 4.96 Mon, 7 Dec 2026",
        "CVE-2023-42115",
    );
    assert!(
        r.contains("Debian's package 4.96-15+deb12u2 and later carry the fix"),
        "{r}"
    );
}

#[test]
fn intel_pack_replaces_the_list_and_a_broken_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    assert_eq!(
        AdvisoryList::load(&dirs).unwrap().list_date,
        AdvisoryList::shipped().list_date
    );
    let path = dir.path().join(advisories::FILE_NAME);
    std::fs::write(
        &path,
        r#"list_date = "2027-01-15"
[[advisory]]
product = "nginx"
cves = ["CVE-2099-0001"]
title = "t"
severity = "high"
published = "2027-01-10"
source = "test"
affected = [{ fixed = "9.0.0" }]
"#,
    )
    .unwrap();
    let list = AdvisoryList::load(&dirs).unwrap();
    assert_eq!(list.list_date, "2027-01-15");
    assert_eq!(list.advisory.len(), 1);
    std::fs::write(&path, "list_date = \"x\"\n[[advisory]]\nproduct = 1\n").unwrap();
    let e = AdvisoryList::load(&dirs).unwrap_err().to_string();
    assert!(
        e.contains("intel.category_dirs") && e.contains("advisories.toml"),
        "{e}"
    );
    std::fs::write(
        &path,
        "list_date = \"x\"\n[[advisory]]\nproduct = \"nginx\"\ncves = []\ntitle = \"t\"\nseverity = \"high\"\npublished = \"\"\nsource = \"\"\naffected = [{ from = \"1.0\" }]\n",
    )
    .unwrap();
    let e = AdvisoryList::load(&dirs).unwrap_err().to_string();
    assert!(e.contains("exactly one of `fixed` and `end`"), "{e}");
}
