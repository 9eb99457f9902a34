//! XMPP (RFC 6120) client-to-server streams, as far as the upgrade to TLS: the client's
//! `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>` and the server's `<proceed/>`
//! (accepted: the stream is TLS from the byte after it, handed to `crate::upgrade`) or
//! `<failure/>` (refused: still XMPP). Why only that: XMPP in an office is chat clients
//! and their servers; what matters for the checks is the TLS that follows (SNI,
//! certificate, version), which the upgrade mechanism parses like STARTTLS mail.
//!
//! XML is not parsed: the two elements are found by their names and namespace in the
//! bytes, with a bounded look-back so that an element split across segments is found.

use crate::upgrade::{MAX_HELD_BEFORE_ANSWER, Upgrade};
use crate::util::find;
use crate::{Direction, Sink, StreamParser};
use kuroko_model::session::SessionRecord;

/// The TLS namespace of `<starttls>`, `<proceed>` and `<failure>` (RFC 6120 5.4).
const TLS_NS: &[u8] = b"urn:ietf:params:xml:ns:xmpp-tls";
/// Longest element start kept while waiting for its `>` (real ones are ~60 bytes).
pub const MAX_ELEMENT: usize = 1024;

/// An element `<name …>` of the TLS namespace found in `buf`: `(start, end)` with `end`
/// just past its `>`. `Err(keep)`: not (yet) found, bytes from `keep` on may still
/// become one.
fn tls_element(buf: &[u8], name: &[u8]) -> Result<(usize, usize), usize> {
    let mut from = 0;
    loop {
        let Some(p) = find(&buf[from..], name).map(|p| p + from) else {
            // A partial `<name` may end the buffer.
            return Err(buf.len().saturating_sub(name.len() - 1).max(from));
        };
        let after = &buf[p + name.len()..];
        match after.first() {
            None => return Err(p),
            Some(b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>') => {}
            Some(_) => {
                from = p + 1;
                continue;
            }
        }
        let Some(gt) = after.iter().position(|&b| b == b'>') else {
            return Err(p);
        };
        let end = p + name.len() + gt + 1;
        if find(&buf[p..end], TLS_NS).is_some() {
            return Ok((p, end));
        }
        from = end;
    }
}

/// XMPP stream parser (STARTTLS only, see the module docs).
#[derive(Debug, Default)]
pub struct XmppParser {
    /// Client bytes not yet searched for `<starttls`, or held after it until the answer.
    up: Vec<u8>,
    /// Server bytes since `<starttls>` not yet searched for the answer.
    down: Vec<u8>,
    /// `<starttls>` sent: client bytes are held until `<proceed/>` or `<failure/>`.
    awaiting: bool,
    upgrade: Option<Upgrade>,
    /// Upgraded to TLS: nothing more for this parser.
    stopped: bool,
}

impl XmppParser {
    pub fn new() -> XmppParser {
        XmppParser::default()
    }

    fn scan_up(&mut self, rec: &mut SessionRecord) {
        if self.awaiting {
            if self.up.len() > MAX_HELD_BEFORE_ANSWER {
                // No answer: not an upgrade we can follow.
                rec.flag("upgrade_answer_lost");
                self.awaiting = false;
                self.up.clear();
                self.down.clear();
            }
            return;
        }
        match tls_element(&self.up, b"<starttls") {
            Ok((_, end)) => {
                rec.flag("xmpp_starttls");
                self.awaiting = true;
                self.up.drain(..end);
                self.down.clear();
            }
            Err(keep) => {
                self.up.drain(..keep);
                if self.up.len() > MAX_ELEMENT {
                    self.up.clear();
                }
            }
        }
    }

    fn scan_down(&mut self, rec: &mut SessionRecord) {
        if !self.awaiting {
            return;
        }
        let proceed = tls_element(&self.down, b"<proceed");
        let failure = tls_element(&self.down, b"<failure");
        // Whichever answer comes first counts.
        let proceed = match (proceed, failure) {
            (Ok((p, _)), Ok((q, _))) if q < p => Err(0),
            (p, _) => p,
        };
        match (proceed, failure) {
            (Ok((_, end)), _) => {
                // `<proceed …/>` or `<proceed …></proceed>`: TLS starts after it.
                let mut end = end;
                if !self.down[..end].ends_with(b"/>")
                    && let Some(close) = find(&self.down[end..], b"</proceed>")
                {
                    end += close + b"</proceed>".len();
                }
                self.stopped = true;
                self.awaiting = false;
                let down = self.down.split_off(end);
                let up = std::mem::take(&mut self.up);
                self.upgrade = Some(Upgrade::starttls([up, down]));
            }
            (_, Ok(_)) => {
                rec.flag("xmpp_starttls_refused");
                self.awaiting = false;
                self.down.clear();
                // What the client sent meanwhile is XMPP again.
                self.scan_up(rec);
            }
            (Err(a), Err(b)) => {
                let keep = a.min(b);
                self.down.drain(..keep);
                if self.down.len() > MAX_HELD_BEFORE_ANSWER {
                    rec.flag("upgrade_answer_lost");
                    self.awaiting = false;
                    self.down.clear();
                    self.up.clear();
                }
            }
        }
    }
}

impl StreamParser for XmppParser {
    fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        _ts_ns: i64,
        rec: &mut SessionRecord,
        _sink: &mut dyn Sink,
    ) {
        if self.stopped {
            return;
        }
        match dir {
            Direction::ToServer => {
                self.up.extend_from_slice(data);
                self.scan_up(rec);
            }
            Direction::ToClient => {
                if self.awaiting {
                    self.down.extend_from_slice(data);
                    self.scan_down(rec);
                }
            }
        }
    }

    fn take_upgrade(&mut self) -> Option<Upgrade> {
        self.upgrade.take()
    }

    fn on_gap(&mut self, _dir: Direction, _len: u64, rec: &mut SessionRecord) {
        if self.stopped {
            return;
        }
        rec.flag("xmpp_gap");
        self.up.clear();
        self.down.clear();
        self.awaiting = false;
    }

    fn on_close(&mut self, _rec: &mut SessionRecord, _sink: &mut dyn Sink) {
        self.up.clear();
        self.down.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction::{ToClient as Down, ToServer as Up};
    use crate::testutil::run_all_cuts;

    /// A Gajim/Pidgin-style opening against a Prosody/ejabberd server: stream headers,
    /// features offering STARTTLS, `<starttls/>`, `<proceed/>`, then a ClientHello and a
    /// ServerHello. The TLS layer is parsed (SNI, version) and the tunnel recorded.
    #[test]
    fn starttls_proceed_hands_the_stream_to_tls() {
        let hello = crate::tls::tests::client_hello_with("chat.corp.example", &[0x0304]);
        let server_hello = crate::tls::tests::server_hello(0x0304, false);
        let steps: Vec<(crate::Direction, &[u8])> = vec![
            (
                Up,
                b"<?xml version='1.0'?><stream:stream to='chat.corp.example' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
            ),
            (
                Down,
                b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xml:lang='en' version='1.0' from='chat.corp.example' id='a1' xmlns='jabber:client'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
            ),
            (Up, b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
            (Down, b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
            (Up, &hello),
            (Down, &server_hello),
        ];
        let make = || crate::stream_parser("xmpp").expect("xmpp parser");
        let (rec, _) = run_all_cuts(make, "xmpp", &steps);
        assert_eq!(rec.protocol, "xmpp");
        let t = rec.tunnel.as_ref().expect("tunnel");
        assert_eq!(
            (t.kind.as_str(), t.inner.as_deref()),
            ("starttls", Some("tls"))
        );
        let tls = rec.tls.as_ref().expect("tls parsed after <proceed/>");
        assert_eq!(tls.sni.as_deref(), Some("chat.corp.example"));
        assert_eq!(tls.version.as_deref(), Some("TLSv1.3"));
        assert!(rec.has_flag("xmpp_starttls"), "{:?}", rec.flags);
    }

    /// The features list names `<starttls>` too (server side, before the client asked):
    /// only the client's element starts the upgrade; a `<failure/>` keeps XMPP.
    #[test]
    fn failure_keeps_xmpp_and_features_are_not_a_request() {
        let steps: Vec<(crate::Direction, &[u8])> = vec![
            (Up, b"<stream:stream to='x' xmlns='jabber:client'>"),
            (
                Down,
                b"<stream:stream><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>",
            ),
            (Up, b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
            (Down, b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"),
            (Up, b"</stream:stream>"),
        ];
        let make = || crate::stream_parser("xmpp").expect("xmpp parser");
        let (rec, _) = run_all_cuts(make, "xmpp", &steps);
        assert!(rec.tunnel.is_none());
        assert!(rec.tls.is_none());
        assert!(rec.has_flag("xmpp_starttls_refused"), "{:?}", rec.flags);
    }

    #[test]
    fn element_search() {
        assert_eq!(
            tls_element(
                b"x<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>y",
                b"<starttls"
            ),
            Ok((1, 52))
        );
        assert_eq!(tls_element(b"abcdefghij<star", b"<starttls"), Err(7));
        assert_eq!(tls_element(b"<starttlsx/>", b"<starttls"), Err(4));
        assert!(tls_element(b"<starttls xmlns='other'/>", b"<starttls").is_err());
    }
}
