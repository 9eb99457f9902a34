//! Search: a query line, the NetRAPTOR-style result table, and one session's detail.

use super::{block, format_time};
use crate::app::App;
use crate::text::Texts;
use kuroko_model::session::SessionRecord;
use kuroko_model::units::format_bytes;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table, TableState, Wrap};

/// Host column: HTTP host / TLS SNI / DNS name, or the mail subject.
fn host_or_subject(s: &SessionRecord) -> String {
    s.host()
        .map(str::to_string)
        .or_else(|| s.mail.as_ref().and_then(|m| m.subject.clone()))
        .unwrap_or_default()
}

fn method_or_from(s: &SessionRecord) -> String {
    s.http
        .as_ref()
        .and_then(|h| h.method.clone())
        .or_else(|| s.mail.as_ref().and_then(|m| m.from.clone()))
        .unwrap_or_default()
}

fn status_or_to(s: &SessionRecord) -> String {
    s.http
        .as_ref()
        .and_then(|h| h.status.map(|v| v.to_string()))
        .or_else(|| s.mail.as_ref().map(|m| m.to.join(",")))
        .unwrap_or_default()
}

pub fn draw(frame: &mut Frame, app: &App, t: &Texts, area: Rect) {
    let [input, rest] = Layout::vertical([Constraint::Length(3), Constraint::Min(3)]).areas(area);
    let cursor = if app.search.editing { "_" } else { "" };
    let hint = if app.search.input.is_empty() && !app.search.editing {
        t.type_query.to_string()
    } else {
        format!("{}{cursor}", app.search.input)
    };
    frame.render_widget(
        Paragraph::new(hint).block(block(app, t.query_prompt)),
        input,
    );
    let title = match (&app.search.running, &app.search.result) {
        (Some(_), _) => t.searching.to_string(),
        (None, Some(Ok(r))) => format!(
            "{} {} {}",
            t.search,
            r.total.unwrap_or(r.sessions.len() as u64),
            t.results
        ),
        _ => t.search.to_string(),
    };
    let sessions = match &app.search.result {
        Some(Ok(r)) if !r.sessions.is_empty() => &r.sessions,
        Some(Ok(_)) => {
            frame.render_widget(Paragraph::new(t.no_results).block(block(app, &title)), rest);
            return;
        }
        Some(Err(e)) => {
            frame.render_widget(
                Paragraph::new(e.as_str())
                    .wrap(Wrap { trim: false })
                    .block(block(app, &title)),
                rest,
            );
            return;
        }
        None => {
            frame.render_widget(Paragraph::new("").block(block(app, &title)), rest);
            return;
        }
    };
    let wide = rest.width >= 120;
    let (list_area, detail_area) = if app.search.detail {
        let [l, r] =
            Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(rest);
        (l, Some(r))
    } else {
        (rest, None)
    };
    let mut header: Vec<String> = vec![super::headers::time(app.lang, &app.tz)];
    header.extend(super::headers::sessions(app.lang).map(String::from));
    // `(VPN)` after an address in `[site] vpn_pools`, as in `kuroko search`'s table.
    let mark = |ip| super::vpn_mark(app, ip);
    let mut widths = vec![
        Constraint::Length(14),
        Constraint::Length(6),
        Constraint::Length(super::client_width(app, sessions)),
        Constraint::Length(21),
        Constraint::Length(10),
        Constraint::Fill(3),
    ];
    if wide {
        header.extend(super::headers::sessions_wide(app.lang).map(String::from));
        widths.extend([
            Constraint::Length(17),
            Constraint::Fill(4),
            Constraint::Fill(2),
            Constraint::Fill(2),
            Constraint::Fill(2),
            Constraint::Fill(2),
        ]);
    }
    let rows = sessions.iter().map(|s| {
        let mut cells = vec![
            format_time(s.start, &app.tz),
            s.protocol.clone(),
            super::client_cell(app, s),
            format!("{}:{}{}", s.server.ip, s.server.port, mark(s.server.ip)),
            s.user().unwrap_or_default().to_string(),
            host_or_subject(s),
        ];
        if wide {
            cells.push(s.client.mac.clone().unwrap_or_default());
            cells.push(
                s.http
                    .as_ref()
                    .and_then(|h| h.url.clone())
                    .unwrap_or_default(),
            );
            cells.push(method_or_from(s));
            cells.push(status_or_to(s));
            cells.push(
                s.http
                    .as_ref()
                    .and_then(|h| h.content_type.clone())
                    .unwrap_or_default(),
            );
            cells.push(
                s.mail
                    .as_ref()
                    .map(|m| {
                        m.attachments
                            .iter()
                            .map(|a| a.name.clone())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
            );
        }
        Row::new(cells)
    });
    let mut state = TableState::default().with_selected(Some(app.search.selected));
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(Style::default().add_modifier(Modifier::BOLD)))
            .block(block(app, &title))
            .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
            .highlight_symbol(if app.ascii { "> " } else { "▶ " }),
        list_area,
        &mut state,
    );
    if let (Some(area), Some(s)) = (detail_area, sessions.get(app.search.selected)) {
        frame.render_widget(
            Paragraph::new(detail_lines(s, app))
                .block(block(app, &s.id))
                .wrap(Wrap { trim: false }),
            area,
        );
    }
}

fn detail_lines(s: &SessionRecord, app: &App) -> Vec<Line<'static>> {
    let ja = app.lang == kuroko_model::finding::Lang::Ja;
    let [client, server, up, down, packets] = if ja {
        ["クライアント", "サーバ", "送信", "受信", "パケット"]
    } else {
        ["client", "server", "up", "down", "packets"]
    };
    let vpn = |ip| super::vpn_mark(app, ip);
    let mut l = vec![
        Line::from(format!(
            "{} {} -> {}  {} {}",
            s.protocol,
            format_time(s.start, &app.tz),
            format_time(s.end, &app.tz),
            s.transport,
            s.vlan.map(|v| format!("VLAN {v}")).unwrap_or_default()
        )),
        Line::from(format!(
            "{client} {}:{}{} {}  {server} {}:{}{} {}",
            s.client.ip,
            s.client.port,
            vpn(s.client.ip),
            s.client.mac.as_deref().unwrap_or(""),
            s.server.ip,
            s.server.port,
            vpn(s.server.ip),
            s.server.mac.as_deref().unwrap_or("")
        )),
        Line::from(format!(
            "{up} {}  {down} {}  {packets} {}  {}",
            format_bytes(s.bytes_up),
            format_bytes(s.bytes_down),
            s.packets,
            s.flags.join(",")
        )),
    ];
    // The passage a content phrase matched (text off the wire: no control characters).
    if let Some(Ok(r)) = &app.search.result
        && let Some((name, passage)) = r.snippets.get(&s.id)
    {
        let clean = |t: &str| -> String { t.chars().filter(|c| !c.is_control()).collect() };
        l.push(Line::from(format!("{}: {}", clean(name), clean(passage))));
    }
    if let Some(h) = &s.http {
        l.push(Line::from(format!(
            "http {} {} {} {}",
            h.method.as_deref().unwrap_or(""),
            h.url.as_deref().unwrap_or(""),
            h.status.map(|v| v.to_string()).unwrap_or_default(),
            h.user_agent.as_deref().unwrap_or("")
        )));
    }
    if let Some(t) = &s.tls {
        l.push(Line::from(format!(
            "tls sni={} {} ja3={} ja4={}",
            t.sni.as_deref().unwrap_or(""),
            t.version.as_deref().unwrap_or(""),
            t.ja3.as_deref().unwrap_or(""),
            t.ja4.as_deref().unwrap_or("")
        )));
        if let Some(c) = t.certs.first() {
            l.push(Line::from(format!(
                "cert {} issuer={} {}..{} sha1={}{}{}",
                c.subject,
                c.issuer,
                c.not_before,
                c.not_after,
                c.sha1,
                if c.self_signed { " self-signed" } else { "" },
                if c.expired { " EXPIRED" } else { "" }
            )));
        }
    }
    if let Some(tn) = &s.tunnel {
        l.push(Line::from(format!(
            "tunnel {} {} -> {}",
            tn.kind,
            tn.target.as_deref().unwrap_or(""),
            tn.inner.as_deref().unwrap_or("?")
        )));
    }
    if let Some(d) = &s.dns {
        l.push(Line::from(format!(
            "dns {} {} {} {}",
            d.query.as_deref().unwrap_or(""),
            d.qtype.as_deref().unwrap_or(""),
            d.rcode.as_deref().unwrap_or(""),
            d.answers.join(",")
        )));
    }
    if let Some(x) = &s.ssh {
        l.push(Line::from(format!(
            "ssh {} / {}",
            x.client_version.as_deref().unwrap_or(""),
            x.server_version.as_deref().unwrap_or("")
        )));
    }
    if let Some(m) = &s.mail {
        l.push(Line::from(format!(
            "mail {} -> {} : {}",
            m.from.as_deref().unwrap_or(""),
            m.to.join(","),
            m.subject.as_deref().unwrap_or("")
        )));
    }
    if let Some(u) = s.user() {
        let label = if ja { "ユーザー" } else { "user" };
        l.push(Line::from(format!("{label} {u}")));
    }
    for f in &s.files {
        l.push(Line::from(format!(
            "file {} {} {} {}",
            f.name.as_deref().unwrap_or("-"),
            f.direction,
            format_bytes(f.bytes),
            f.sha256
        )));
    }
    l
}
