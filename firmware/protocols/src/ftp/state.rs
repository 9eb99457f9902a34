//! Per-session FTP state: control-channel lines, the data channel being set up, and the
//! data-channel reconstruction.

use super::parser::*;
use crate::util::{LineBuf, direction_word, emit_object, push_capped, text};
use crate::{Direction, Expectation, MAX_OBJECT_BYTES, ObjectMeta, Sink, StreamParser};
use kuroko_model::session::{Ftp, FtpFile, SessionRecord};
use std::net::IpAddr;

/// Longest control line kept (RFC 959 does not cap it; servers use 512–4096).
pub const MAX_CONTROL_LINE: usize = 4096;

/// FTP control-channel parser.
#[derive(Debug, Default)]
pub struct FtpParser {
    lines: [LineBuf; 2],
    /// Data address announced by PASV/EPSV/PORT/EPRT, waiting for its transfer command.
    data: Option<Expectation>,
    /// AUTH TLS was sent; a 234 reply hands the channel to TLS (`crate::upgrade`).
    auth_tls_sent: bool,
    encrypted: bool,
    upgrade: Option<crate::upgrade::Upgrade>,
    /// A transfer command is waiting for its 150 reply (index into `ftp.files`).
    last_file: Option<usize>,
    /// The last command was USER, PASS or ACCT: a 530 now answers a login attempt.
    /// (Clients send FEAT / OPTS UTF8 ON before logging in, and many servers answer them
    /// 530 "log in first": that is no failed login.)
    login_pending: bool,
}

impl FtpParser {
    pub fn new() -> FtpParser {
        FtpParser::default()
    }

    fn on_command(&mut self, line: &[u8], rec: &mut SessionRecord, sink: &mut dyn Sink) {
        let (verb, arg) = command(line);
        let shown = if verb == "PASS" {
            b"PASS ****".to_vec()
        } else {
            line.to_vec()
        };
        let shown = text(rec, &shown);
        let mut ftp = rec.ftp.take().unwrap_or_default();
        push_capped(rec, &mut ftp.commands, shown);
        self.login_pending = matches!(verb.as_str(), "USER" | "PASS" | "ACCT");
        match verb.as_str() {
            "USER" => ftp.user = Some(text(rec, arg)),
            "AUTH" => self.auth_tls_sent = true,
            "PORT" => {
                if let Some((ip, port)) = host_port_6(arg) {
                    self.announce(IpAddr::V4(ip), port, Some(rec.server.ip), sink);
                } else {
                    rec.flag("malformed:ftp");
                }
            }
            "EPRT" => {
                if let Some((ip, port)) = eprt(arg) {
                    self.announce(ip, port, Some(rec.server.ip), sink);
                } else {
                    rec.flag("malformed:ftp");
                }
            }
            "RETR" | "STOR" | "APPE" | "STOU" | "LIST" | "NLST" | "MLSD" => {
                let direction = match verb.as_str() {
                    "STOR" | "APPE" | "STOU" => Direction::ToServer,
                    _ => Direction::ToClient,
                };
                let is_file = matches!(verb.as_str(), "RETR" | "STOR" | "APPE" | "STOU");
                let name = if is_file && !arg.is_empty() {
                    Some(text(rec, arg))
                } else {
                    None
                };
                if let Some(name) = &name {
                    let file = FtpFile {
                        name: name.clone(),
                        direction: direction_word(Some(direction)).into(),
                        bytes: 0,
                        sha256: None,
                        ..Default::default()
                    };
                    let idx = ftp.files.len();
                    self.last_file = push_capped(rec, &mut ftp.files, file).then_some(idx);
                }
                if let Some(mut exp) = self.data.take() {
                    exp.file_name = name;
                    exp.direction = Some(direction);
                    sink.expect(exp);
                }
            }
            _ => {}
        }
        rec.ftp = Some(ftp);
    }

    fn announce(&mut self, server: IpAddr, port: u16, client: Option<IpAddr>, sink: &mut dyn Sink) {
        let exp = Expectation {
            client,
            server,
            server_port: port,
            protocol: "ftp-data",
            file_name: None,
            direction: None,
        };
        sink.expect(exp.clone());
        self.data = Some(exp);
    }

    fn on_reply(&mut self, line: &[u8], rec: &mut SessionRecord, sink: &mut dyn Sink) {
        let Some((code, more)) = reply_code(line) else {
            return;
        };
        // The greeting's first line names the server software (multi-line greetings such
        // as Pure-FTPd's put it there, not in the last line).
        if code == 220 && rec.ftp.as_ref().is_none_or(|f| f.banner.is_none()) {
            let banner = text(rec, line);
            rec.ftp.get_or_insert_with(Default::default).banner = Some(banner);
        }
        if more {
            return; // the last line of a multi-line reply carries the code too
        }
        match code {
            227 => match host_port_6(&line[3..]) {
                Some((ip, port)) => {
                    // Servers behind NAT often announce 0.0.0.0 or a private address; the
                    // client then connects to the control address.
                    let server = if ip.is_unspecified() {
                        rec.server.ip
                    } else {
                        IpAddr::V4(ip)
                    };
                    self.announce(server, port, Some(rec.client.ip), sink);
                }
                None => rec.flag("malformed:ftp"),
            },
            229 => match epsv_port(line) {
                Some(port) => self.announce(rec.server.ip, port, Some(rec.client.ip), sink),
                None => rec.flag("malformed:ftp"),
            },
            150 | 125 => {
                if let (Some(size), Some(i)) = (announced_size(line), self.last_file)
                    && let Some(f) = rec.ftp.as_mut().and_then(|f| f.files.get_mut(i))
                    && f.bytes == 0
                {
                    f.bytes = size;
                }
            }
            234 if self.auth_tls_sent => {
                rec.flag("ftp_tls");
                self.encrypted = true;
            }
            530 if self.login_pending => rec.flag("ftp_login_failed"),
            _ => {}
        }
    }
}

impl StreamParser for FtpParser {
    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        sink: &mut dyn Sink,
    ) {
        let mut data = data;
        // Line by line, so that what follows a 234 reply is handed to TLS, not parsed.
        while !data.is_empty() && !self.encrypted {
            let cut = data
                .iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |p| p + 1);
            let mut lines = Vec::new();
            self.lines[dir.index()].feed(&data[..cut], MAX_CONTROL_LINE, |l| lines.push(l));
            data = &data[cut..];
            for l in lines {
                if l.overlong {
                    rec.flag("ftp_line_too_long");
                }
                match dir {
                    Direction::ToServer => self.on_command(&l.bytes, rec, sink),
                    Direction::ToClient => self.on_reply(&l.bytes, rec, sink),
                }
            }
            if self.encrypted {
                let mut pending: [Vec<u8>; 2] = Default::default();
                for (i, lb) in self.lines.iter_mut().enumerate() {
                    pending[i] = lb.take_partial();
                }
                pending[dir.index()].extend_from_slice(data);
                self.upgrade = Some(crate::upgrade::Upgrade::starttls(pending));
            }
        }
    }

    fn take_upgrade(&mut self) -> Option<crate::upgrade::Upgrade> {
        self.upgrade.take()
    }

    fn on_gap(&mut self, dir: Direction, _len: u64, _rec: &mut SessionRecord) {
        self.lines[dir.index()].clear();
    }

    fn on_close(&mut self, _rec: &mut SessionRecord, _sink: &mut dyn Sink) {
        for l in &mut self.lines {
            l.clear();
        }
    }
}

/// FTP data-channel parser: the whole transfer as one object (kind `ftp`).
#[derive(Debug, Default)]
pub struct FtpDataParser {
    name: Option<String>,
    /// Upload (ToServer) or download (ToClient) from the FTP client's point of view.
    direction: Option<Direction>,
    /// Bytes kept per direction; both together are at most [`MAX_OBJECT_BYTES`] (a
    /// transfer runs one way: a data channel holds one object's worth, not two).
    bufs: [Vec<u8>; 2],
    totals: [u64; 2],
    partial: [bool; 2],
}

impl FtpDataParser {
    pub fn new(expectation: Option<&Expectation>) -> FtpDataParser {
        let mut p = FtpDataParser::default();
        if let Some(e) = expectation {
            p.on_expectation_update(e);
        }
        p
    }
}

impl StreamParser for FtpDataParser {
    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        _rec: &mut SessionRecord,
        _sink: &mut dyn Sink,
    ) {
        let i = dir.index();
        self.totals[i] += data.len() as u64;
        let room = MAX_OBJECT_BYTES.saturating_sub(self.bufs[0].len() + self.bufs[1].len());
        if data.len() > room {
            self.partial[i] = true;
        }
        self.bufs[i].extend_from_slice(&data[..data.len().min(room)]);
    }

    fn on_gap(&mut self, dir: Direction, len: u64, _rec: &mut SessionRecord) {
        self.totals[dir.index()] += len;
        self.partial[dir.index()] = true;
    }

    fn on_close(&mut self, rec: &mut SessionRecord, sink: &mut dyn Sink) {
        // The transfer is the direction that carried bytes (the other is empty).
        let i = if self.totals[1] >= self.totals[0] {
            1
        } else {
            0
        };
        if self.totals[i] == 0 {
            return;
        }
        let flow_dir = if i == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        // Passive mode: the FTP client is this session's client, so flow and transfer
        // directions agree; active mode reverses them. The control channel knows best.
        let direction = self.direction.unwrap_or(flow_dir);
        let bytes = std::mem::take(&mut self.bufs[i]);
        let meta = ObjectMeta {
            name: self.name.clone(),
            content_type: None,
            kind: "ftp",
            direction: Some(direction),
            partial: self.partial[i],
        };
        let sha = emit_object(rec, sink, meta, &bytes);
        let name = self
            .name
            .as_deref()
            .map(|n| text(rec, n.as_bytes()))
            .unwrap_or_default();
        // The YARA verdict the sink put on the file goes with the link to the control
        // session (the analyzer's `link_ftp_file`), where the analyst looks.
        let (yara, yara_level) = sha
            .as_ref()
            .and_then(|sha| rec.files.iter().rev().find(|f| &f.sha256 == sha))
            .map(|f| (f.yara.clone(), f.yara_level.clone()))
            .unwrap_or_default();
        let ftp = rec.ftp.get_or_insert_with(Ftp::default);
        ftp.files.push(FtpFile {
            name,
            direction: direction_word(Some(direction)).into(),
            bytes: self.totals[i],
            sha256: sha,
            yara,
            yara_level,
        });
    }

    fn on_expectation_update(&mut self, e: &Expectation) {
        if e.file_name.is_some() {
            self.name.clone_from(&e.file_name);
        }
        if e.direction.is_some() {
            self.direction = e.direction;
        }
    }
}

/// Copies size, SHA-256 and YARA verdict of a finished `ftp-data` session into the matching file of
/// its control session (first file with that name and direction still without a hash),
/// and records the control session's id on the data session.
pub fn link_data_session(control: &mut SessionRecord, data: &mut SessionRecord) {
    let Some(done) = data.ftp.as_ref().and_then(|f| f.files.first()).cloned() else {
        return;
    };
    if let Some(ftp) = data.ftp.as_mut() {
        ftp.control_session = Some(control.id.clone());
    }
    let Some(ctl) = control.ftp.as_mut() else {
        return;
    };
    if let Some(f) = ctl
        .files
        .iter_mut()
        .find(|f| f.name == done.name && f.direction == done.direction && f.sha256.is_none())
    {
        f.bytes = done.bytes;
        f.sha256 = done.sha256;
        f.yara = done.yara;
        f.yara_level = done.yara_level;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction::{ToClient as Down, ToServer as Up};
    use crate::VecSink;
    use crate::testutil::{corpus, record, run_all_cuts, view};

    fn ftp() -> Box<dyn StreamParser> {
        Box::new(FtpParser::new())
    }

    #[test]
    fn passive_download_and_active_upload() {
        let up: &[u8] = b"USER alice\r\nPASS s3cret\r\nTYPE I\r\nPASV\r\nRETR report.pdf\r\nPORT 10,0,0,5,195,149\r\nSTOR up.xlsx\r\nQUIT\r\n";
        let down: &[u8] = b"220 (vsFTPd 3.0.3)\r\n331 Please specify the password.\r\n230 Login successful.\r\n200 Switching to Binary mode.\r\n227 Entering Passive Mode (192,0,2,10,117,48).\r\n150 Opening BINARY mode data connection for report.pdf (4096 bytes).\r\n226 Transfer complete.\r\n200 PORT command successful.\r\n150 Ok to send data.\r\n226 Transfer complete.\r\n221 Goodbye.\r\n";
        // Interleave as a real exchange would: each command, then its reply.
        let ups: Vec<&[u8]> = up.split_inclusive(|&b| b == b'\n').collect();
        let downs: Vec<&[u8]> = down.split_inclusive(|&b| b == b'\n').collect();
        let mut t: Vec<(Direction, &[u8])> = vec![(Down, downs[0])];
        let mut d = 1;
        for (k, u) in ups.iter().enumerate() {
            t.push((Up, u));
            let replies = if k == 4 || k == 6 { 2 } else { 1 }; // RETR/STOR: 150 + 226
            for _ in 0..replies {
                if d < downs.len() {
                    t.push((Down, downs[d]));
                    d += 1;
                }
            }
        }
        let (rec, sink) = run_all_cuts(ftp, "ftp", &t);
        let f = rec.ftp.unwrap();
        assert_eq!(f.user.as_deref(), Some("alice"));
        assert_eq!(f.banner.as_deref(), Some("220 (vsFTPd 3.0.3)"));
        assert_eq!(f.commands[1], "PASS ****");
        assert!(!f.commands.iter().any(|c| c.contains("s3cret")));
        assert_eq!(f.files.len(), 2);
        assert_eq!(
            (
                f.files[0].name.as_str(),
                f.files[0].direction.as_str(),
                f.files[0].bytes
            ),
            ("report.pdf", "download", 4096)
        );
        assert_eq!(
            (f.files[1].name.as_str(), f.files[1].direction.as_str()),
            ("up.xlsx", "upload")
        );
        // PASV: announced, then announced again with the name.
        let e = &sink.expectations;
        assert_eq!(e.len(), 4);
        assert_eq!(e[0].server, "192.0.2.10".parse::<IpAddr>().unwrap());
        assert_eq!(e[0].server_port, 117 * 256 + 48);
        assert_eq!(e[0].client, Some(rec.client.ip));
        assert_eq!(e[1].file_name.as_deref(), Some("report.pdf"));
        assert_eq!(e[1].direction, Some(Down));
        // PORT: the server connects to the client's address.
        assert_eq!(e[2].server, "10.0.0.5".parse::<IpAddr>().unwrap());
        assert_eq!(e[2].server_port, 195 * 256 + 149);
        assert_eq!(e[2].client, Some(rec.server.ip));
        assert_eq!(e[3].file_name.as_deref(), Some("up.xlsx"));
        assert_eq!(e[3].direction, Some(Up));
        assert!(e.iter().all(|x| x.protocol == "ftp-data"));
    }

    /// lftp → pyftpdlib on loopback (passive mode, refused AUTH TLS): a real control
    /// transcript; expected values from tshark (`ftp.request.arg` of USER and RETR).
    #[test]
    fn real_lftp_session() {
        let t = corpus("ftp", "lftp-pyftpdlib-control.bin");
        let (rec, sink) = run_all_cuts(ftp, "ftp", &view(&t));
        let f = rec.ftp.unwrap();
        let expected = include_str!("../../fuzz/corpus/ftp/expected.txt");
        let mut lines = expected.lines();
        assert_eq!(f.user.as_deref(), lines.next());
        let retr = lines.next().unwrap();
        assert!(
            f.files
                .iter()
                .any(|x| x.name == retr && x.direction == "download"),
            "{:?}",
            f.files
        );
        assert!(
            sink.expectations
                .iter()
                .any(|e| e.file_name.as_deref() == Some(retr))
        );
        assert!(f.commands.iter().any(|c| c == "PASS ****"));
    }

    #[test]
    fn data_channel_object_and_link() {
        let exp = Expectation {
            client: None,
            server: "192.0.2.10".parse().unwrap(),
            server_port: 30000,
            protocol: "ftp-data",
            file_name: None,
            direction: None,
        };
        let mut p = FtpDataParser::new(Some(&exp));
        let mut rec = record("ftp-data");
        let mut sink = VecSink::default();
        // Both directions together hold at most one object.
        let mut q = FtpDataParser::new(Some(&exp));
        q.on_data(
            Up,
            &vec![b'u'; MAX_OBJECT_BYTES - 4],
            0,
            &mut rec,
            &mut sink,
        );
        q.on_data(Down, b"12345678", 0, &mut rec, &mut sink);
        assert_eq!(q.bufs[0].len() + q.bufs[1].len(), MAX_OBJECT_BYTES);
        assert!(q.partial[1]);
        assert_eq!(q.totals, [MAX_OBJECT_BYTES as u64 - 4, 8]);
        p.on_data(Down, b"%PDF-1.4 part one ", 0, &mut rec, &mut sink);
        p.on_expectation_update(&Expectation {
            file_name: Some("report.pdf".into()),
            direction: Some(Down),
            ..exp
        });
        p.on_data(Down, b"part two", 0, &mut rec, &mut sink);
        p.on_close(&mut rec, &mut sink);
        assert_eq!(sink.objects.len(), 1);
        assert_eq!(sink.objects[0].0.name.as_deref(), Some("report.pdf"));
        assert_eq!(sink.objects[0].0.kind, "ftp");
        assert_eq!(sink.objects[0].1, b"%PDF-1.4 part one part two");
        let mut control = record("ftp");
        control.ftp = Some(Ftp {
            files: vec![FtpFile {
                name: "report.pdf".into(),
                direction: "download".into(),
                bytes: 0,
                sha256: None,
                ..Default::default()
            }],
            ..Default::default()
        });
        link_data_session(&mut control, &mut rec);
        let f = &control.ftp.as_ref().unwrap().files[0];
        assert_eq!(f.bytes, 26);
        assert_eq!(f.sha256, rec.files.first().map(|x| x.sha256.clone()));
        assert_eq!(rec.ftp.unwrap().control_session.as_deref(), Some("t1"));
    }

    /// The data connection of that session's RETR: the object is byte-identical to the
    /// served file (SHA-256 computed by sha256sum on the server's copy).
    #[test]
    fn real_data_channel_is_byte_identical() {
        let t = corpus("ftp-data", "pasv-retr-report.bin");
        let (rec, sink) =
            run_all_cuts(|| Box::new(FtpDataParser::new(None)), "ftp-data", &view(&t));
        assert_eq!(sink.objects.len(), 1);
        assert_eq!(
            rec.files[0].sha256,
            include_str!("../../fuzz/corpus/ftp-data/report.sha256").trim()
        );
        assert_eq!(rec.files[0].bytes, 5000);
    }

    /// lftp sends FEAT and OPTS UTF8 ON before USER; pyftpdlib answers OPTS with 530.
    #[test]
    fn a_530_before_login_is_no_failed_login_but_one_after_pass_is() {
        let before: &[(Direction, &[u8])] = &[
            (Down, b"220 pyftpdlib ready.\r\n"),
            (Up, b"FEAT\r\n"),
            (
                Down,
                b"211-Features supported:\r\n UTF8\r\n211 End FEAT.\r\n",
            ),
            (Up, b"OPTS UTF8 ON\r\n"),
            (Down, b"530 Log in with USER and PASS first.\r\n"),
            (Up, b"USER alice\r\n"),
            (Down, b"331 Username ok, send password.\r\n"),
            (Up, b"PASS s3cret\r\n"),
            (Down, b"230 Login successful.\r\n"),
        ];
        let (rec, _) = run_all_cuts(ftp, "ftp", before);
        assert!(!rec.has_flag("ftp_login_failed"), "{:?}", rec.flags);
        let mut failed = before[..8].to_vec();
        failed.push((Down, b"530 Authentication failed.\r\n"));
        let (rec, _) = run_all_cuts(ftp, "ftp", &failed);
        assert!(rec.has_flag("ftp_login_failed"));
    }

    #[test]
    fn auth_tls_stops_parsing() {
        let (rec, _) = run_all_cuts(
            ftp,
            "ftp",
            &[
                (Down, b"220 hi\r\n"),
                (Up, b"AUTH TLS\r\n"),
                (Down, b"234 Proceed.\r\n"),
                (Up, b"\x16\x03\x01 USER x\r\n"),
            ],
        );
        assert!(rec.has_flag("ftp_tls"));
        assert_eq!(rec.ftp.unwrap().commands, vec!["AUTH TLS".to_string()]);
    }
}
