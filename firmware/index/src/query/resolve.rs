//! Query fields that are not stored with the sessions, resolved before a search.
//!
//! `finding:F…` names a finding, whose evidence sessions live in the findings store
//! (`kuroko_detect`), which this crate does not read. The caller looks the ids up and
//! [`findings`] rewrites every `finding:` term into `id:(…)` over those sessions, so the
//! index, the record matcher and the printed query all see ordinary terms.

use super::ast::{Expr, Value};
use super::fields::Field;
use super::{Query, QueryError};

/// Most sessions one `finding:` term expands to (a finding keeps at most a few dozen
/// evidence sessions; this bounds a hand-made store).
pub const MAX_FINDING_SESSIONS: usize = 1000;

/// Rewrites `finding:` terms of `q` with `sessions_of(id)`: the finding's session ids, or
/// `None` when no finding has that id (an error naming it, with what to do).
pub fn findings(
    q: &Query,
    sessions_of: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Result<Query, QueryError> {
    let text = q.to_string();
    let expr = rewrite(&q.expr, sessions_of, &text)?;
    if expr == q.expr {
        return Ok(q.clone());
    }
    let plan =
        super::Plan::from_expr(&expr).map_err(|e| QueryError::new(&text, 0, e.to_string()))?;
    Ok(Query { expr, plan })
}

fn rewrite(
    e: &Expr,
    sessions_of: &dyn Fn(&str) -> Option<Vec<String>>,
    text: &str,
) -> Result<Expr, QueryError> {
    let values_of = |v: &Value| -> Result<Vec<Value>, QueryError> {
        let id = match v {
            Value::Word(w) if !w.contains(['*', '?']) => w.clone(),
            Value::Phrase(p) => p.clone(),
            _ => {
                return Err(QueryError::new(
                    text,
                    0,
                    "`finding` takes a finding id (e.g. finding:F3a2b…, as `kuroko findings` prints it), not a pattern or range".into(),
                ));
            }
        };
        let Some(sessions) = sessions_of(&id) else {
            return Err(QueryError::new(
                text,
                text.find(&id).unwrap_or(0),
                format!("no finding has the id `{id}`; `kuroko findings` lists the ids"),
            ));
        };
        Ok(sessions
            .into_iter()
            .take(MAX_FINDING_SESSIONS)
            .map(Value::Phrase)
            .collect())
    };
    let ids = |values: Vec<Value>| {
        if values.is_empty() {
            // A finding whose sessions are all gone matches nothing.
            Expr::Not(Box::new(Expr::All))
        } else {
            Expr::AnyOf {
                field: Field::Id,
                values,
            }
        }
    };
    Ok(match e {
        Expr::And(parts) => Expr::And(
            parts
                .iter()
                .map(|p| rewrite(p, sessions_of, text))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(parts) => Expr::Or(
            parts
                .iter()
                .map(|p| rewrite(p, sessions_of, text))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(inner) => Expr::Not(Box::new(rewrite(inner, sessions_of, text)?)),
        Expr::Term {
            field: Some(Field::Finding),
            value,
        } => ids(values_of(value)?),
        Expr::AnyOf {
            field: Field::Finding,
            values,
        } => {
            let mut all = Vec::new();
            for v in values {
                all.extend(values_of(v)?);
            }
            ids(all)
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(id: &str) -> Option<Vec<String>> {
        match id {
            "Fabc" => Some(vec!["s1".into(), "s2".into()]),
            "Fgone" => Some(vec![]),
            _ => None,
        }
    }

    #[test]
    fn finding_terms_become_the_findings_sessions() {
        let q = Query::parse("finding:Fabc AND protocol:ftp").unwrap();
        let r = findings(&q, &lookup).unwrap();
        assert_eq!(
            r.to_string(),
            Query::parse("id:(\"s1\" \"s2\") AND protocol:ftp")
                .unwrap()
                .to_string()
        );
        let r = findings(&Query::parse("finding:Fgone").unwrap(), &lookup).unwrap();
        assert_eq!(r.expr, Expr::Not(Box::new(Expr::All)));
        let e = findings(&Query::parse("finding:Fnope").unwrap(), &lookup).unwrap_err();
        assert!(
            e.message.contains("Fnope") && e.message.contains("kuroko findings"),
            "{e}"
        );
        assert!(findings(&Query::parse("finding:F*").unwrap(), &lookup).is_err());
        // Queries without `finding:` are returned as they are.
        let q = Query::parse("protocol:ftp").unwrap();
        assert_eq!(findings(&q, &lookup).unwrap(), q);
    }
}
