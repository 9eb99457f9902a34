//! The alert receivers `bench live` points `[alerts] syslog` and `smtp_relay` at: a UDP
//! syslog collector and an SMTP sink, threads of the bench's own process on 127.0.0.1
//! (`kuroko analyze --follow` runs in the root namespace), each recording when every
//! session's alert first arrived (wall clock, nanoseconds, as the records' `end`).
//!
//! Why in-process rather than rsyslog or a Python smtpd: no package to install, nothing
//! left running, and the time of arrival is taken where the bytes arrive, not by polling a
//! file. The syslog message names its session in the structured data (`session="ID"`);
//! the mail lists one line per hit ending `(session ID)` in its base64 body. A mail is
//! received when the sink has read the `.` that ends its DATA (the relay's "queued").

use base64::Engine;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest line or message the sinks read (a mail of 50 hits is ~10 KiB).
const MAX_MAIL: usize = 4 << 20;
/// How often the threads look at the stop flag.
const TICK: Duration = Duration::from_millis(100);

/// What arrived: per session id, when its first syslog message and its first mail came.
#[derive(Default, Debug)]
pub struct Received {
    pub syslog: HashMap<String, i64>,
    pub mail: HashMap<String, i64>,
    pub syslog_messages: u64,
    pub mails: u64,
}

/// The two receivers, running until dropped.
pub struct Sinks {
    pub syslog_addr: String,
    pub smtp_addr: String,
    received: Arc<Mutex<Received>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Sinks {
    pub fn start() -> anyhow::Result<Sinks> {
        let received = Arc::new(Mutex::new(Received::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        udp.set_read_timeout(Some(TICK))?;
        let tcp = TcpListener::bind("127.0.0.1:0")?;
        tcp.set_nonblocking(true)?;
        let (syslog_addr, smtp_addr) =
            (udp.local_addr()?.to_string(), tcp.local_addr()?.to_string());
        let mut threads = Vec::new();
        {
            let (received, stop) = (received.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    let Ok(n) = udp.recv(&mut buf) else { continue };
                    let now = kuroko_model::Timestamp::now().nanos();
                    let text = String::from_utf8_lossy(&buf[..n]);
                    let mut r = received.lock().unwrap();
                    r.syslog_messages += 1;
                    if let Some(id) = syslog_session(&text) {
                        r.syslog.entry(id).or_insert(now);
                    }
                }
            }));
        }
        {
            let (received, stop) = (received.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match tcp.accept() {
                        Ok((s, _)) => {
                            if let Err(e) = smtp_session(s, &received) {
                                eprintln!("bench live: SMTP sink: {e}");
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            }));
        }
        Ok(Sinks {
            syslog_addr,
            smtp_addr,
            received,
            stop,
            threads,
        })
    }

    /// The `[alerts]` table that sends every alert here (and `deliveries_per_minute` high
    /// enough that a session every `interval` is never summarised instead).
    pub fn config(&self, rate_limit: bool) -> String {
        format!(
            "[alerts]\nsyslog = \"{}\"\nsmtp_relay = \"{}\"\nmail_from = \"kuroko@bench.invalid\"\n\
             mail_to = [\"soc@bench.invalid\"]\n{}\n",
            self.syslog_addr,
            self.smtp_addr,
            if rate_limit {
                "deliveries_per_minute = 100000\n"
            } else {
                ""
            }
        )
    }

    /// A copy of what arrived so far.
    pub fn snapshot(&self) -> (HashMap<String, i64>, HashMap<String, i64>, u64, u64) {
        let r = self.received.lock().unwrap();
        (r.syslog.clone(), r.mail.clone(), r.syslog_messages, r.mails)
    }

    /// Forgets what arrived (a new variant).
    pub fn clear(&self) {
        *self.received.lock().unwrap() = Received::default();
    }
}

impl Drop for Sinks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The `session="ID"` parameter of an RFC 5424 message's structured data.
fn syslog_session(text: &str) -> Option<String> {
    let i = text.find(" session=\"")? + " session=\"".len();
    let rest = &text[i..];
    Some(rest[..rest.find('"')?].to_string())
}

/// The session ids a mail lists (`(session ID)` at the end of each hit line of its body,
/// base64 transfer-encoded after the headers).
fn mail_sessions(message: &str) -> Vec<String> {
    let body = message
        .split_once("\r\n\r\n")
        .or_else(|| message.split_once("\n\n"))
        .map_or("", |(_, b)| b);
    let joined: String = body.split_whitespace().collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(joined.as_bytes())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|_| body.to_string());
    decoded
        .lines()
        .filter_map(|l| {
            let i = l.rfind("(session ")? + "(session ".len();
            l[i..].strip_suffix(')').map(str::to_string)
        })
        .collect()
}

/// Serves one SMTP connection: any envelope is accepted, every message recorded.
fn smtp_session(s: TcpStream, received: &Mutex<Received>) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    w.write_all(b"220 bench-sink ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line
            .split_ascii_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => w.write_all(b"250-bench-sink\r\n250 8BITMIME\r\n")?,
            "DATA" => {
                w.write_all(b"354 end with .\r\n")?;
                let mut message = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    if message.len() < MAX_MAIL {
                        message.push_str(line.strip_prefix('.').unwrap_or(&line));
                    }
                }
                let now = kuroko_model::Timestamp::now().nanos();
                {
                    let mut g = received.lock().unwrap();
                    g.mails += 1;
                    for id in mail_sessions(&message) {
                        g.mail.entry(id).or_insert(now);
                    }
                }
                w.write_all(b"250 queued\r\n")?;
            }
            "QUIT" => {
                w.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => w.write_all(b"250 ok\r\n")?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_read_from_syslog_and_mail() {
        let m = "<164>1 2026-12-07T10:00:00Z kuroko kuroko 1 alert [kuroko@32473 \
                 condition=\"c\" severity=\"warning\" session=\"0001-02-03\"] \u{feff}x";
        assert_eq!(syslog_session(m).as_deref(), Some("0001-02-03"));
        let body = "Alert condition: c\n\nx telnet a -> b (session 0001-02-03)\n\
                    y telnet a -> b (session 0001-02-04)\n";
        let b64 = base64::engine::general_purpose::STANDARD.encode(body);
        let (a, b) = b64.split_at(20);
        let mail = format!("Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\n{a}\r\n{b}\r\n");
        assert_eq!(mail_sessions(&mail), vec!["0001-02-03", "0001-02-04"]);
    }
}
