//! Findings and evidence sessions as JSONL (the contract's records) and CSV (for a
//! spreadsheet). CSV cells that a spreadsheet would read as a formula (`=`, `+`, `-`, `@`,
//! tab, CR at the start) are prefixed with `'`: the values came off the wire.

use crate::data::ReportData;
use crate::error::ReportError;
use kuroko_model::finding::Lang;

fn csv_err(e: impl std::fmt::Display) -> ReportError {
    ReportError::Export(format!("cannot write CSV: {e}"))
}

/// Neutralises spreadsheet formulas ([`kuroko_model::csv_cell::defuse`]).
pub fn defuse_cell(s: &str) -> String {
    kuroko_model::csv_cell::defuse(s).into_owned()
}

pub fn findings_jsonl(d: &ReportData) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    for f in &d.findings {
        let mut v =
            serde_json::to_value(&f.finding).map_err(|e| ReportError::Export(e.to_string()))?;
        if let Some(n) = &f.note {
            v["analyst_note"] = serde_json::Value::String(n.clone());
        }
        out.extend_from_slice(v.to_string().as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

/// The findings CSV: the one schema of [`crate::findings_csv`].
pub fn findings_csv(d: &ReportData, lang: Lang) -> Result<Vec<u8>, ReportError> {
    Ok(crate::findings_csv::write(&d.findings, lang, &d.timezone))
}

pub fn sessions_jsonl(d: &ReportData) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    for s in d.evidence.values() {
        out.extend_from_slice(
            &serde_json::to_vec(s).map_err(|e| ReportError::Export(e.to_string()))?,
        );
        out.push(b'\n');
    }
    Ok(out)
}

pub fn sessions_csv(d: &ReportData) -> Result<Vec<u8>, ReportError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "id",
        "start",
        "end",
        "protocol",
        "transport",
        "client_ip",
        "client_port",
        "server_ip",
        "server_port",
        "bytes_up",
        "bytes_down",
        "packets",
        "host",
        "user",
        "findings",
        "captured_bytes",
        "missing_bytes",
        "community_id",
    ])
    .map_err(csv_err)?;
    for s in d.evidence.values() {
        let findings: Vec<&str> = d
            .findings
            .iter()
            .filter(|f| f.finding.evidence.iter().any(|e| e == &s.id))
            .map(|f| f.finding.id.as_str())
            .collect();
        let row = [
            s.id.clone(),
            s.start.to_rfc3339(),
            s.end.to_rfc3339(),
            s.protocol.clone(),
            s.transport.clone(),
            s.client.ip.to_string(),
            s.client.port.to_string(),
            s.server.ip.to_string(),
            s.server.port.to_string(),
            s.bytes_up.to_string(),
            s.bytes_down.to_string(),
            s.packets.to_string(),
            s.host().unwrap_or_default().to_string(),
            s.user().unwrap_or_default().to_string(),
            findings.join(" "),
            s.captured_bytes.to_string(),
            s.missing_bytes.to_string(),
            s.community_id.clone(),
        ];
        w.write_record(row.iter().map(|s| defuse_cell(s)))
            .map_err(csv_err)?;
    }
    w.into_inner().map_err(csv_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused() {
        assert_eq!(defuse_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(defuse_cell("10.0.0.1"), "10.0.0.1");
        assert_eq!(defuse_cell(""), "");
    }
}
