//! The quarantine ledger: every batch the gate saw and every row it held
//! back, with source, manifest digest, reasons and time, in SQLite (WAL
//! mode). A batch and its rows are written in one transaction, so a crash
//! mid-batch leaves either the whole record or none of it — never a batch
//! half accepted.

use rusqlite::{params, Connection};
use serde::Serialize;
use std::path::Path;

pub struct Ledger {
    conn: Connection,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BatchRecord {
    pub id: i64,
    pub received_at: String,
    pub source: Option<String>,
    pub batch: String,
    pub batch_sha256: String,
    pub manifest_sha256: Option<String>,
    pub rows: i64,
    pub accepted_rows: i64,
    pub decision: String,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QuarantinedRow {
    pub batch_id: i64,
    pub row: i64,
    pub reasons: Vec<String>,
    /// The row as CSV text.
    pub content: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    source TEXT,
    batch TEXT NOT NULL,
    batch_sha256 TEXT NOT NULL,
    manifest_sha256 TEXT,
    rows INTEGER NOT NULL,
    accepted_rows INTEGER NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('accepted', 'partially-accepted', 'quarantined', 'rejected')),
    reasons TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantined_rows (
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    row INTEGER NOT NULL,
    reasons TEXT NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (batch_id, row)
);
";

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    mlsec_sign::intoto::time::format_utc(secs)
}

impl Ledger {
    pub fn open(path: &Path) -> Result<Ledger, String> {
        let conn = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| format!("{}: {e}", path.display()))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| e.to_string())?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| format!("{}: not a gate ledger ({e})", path.display()))?;
        Ok(Ledger { conn })
    }

    /// Records a batch and its quarantined rows atomically; returns its id.
    pub fn record(&mut self, batch: &BatchRecord, rows: &[QuarantinedRow]) -> Result<i64, String> {
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        tx.execute(
            "INSERT INTO batches (received_at, source, batch, batch_sha256, manifest_sha256, rows, \
             accepted_rows, decision, reasons) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                if batch.received_at.is_empty() { now_rfc3339() } else { batch.received_at.clone() },
                batch.source,
                batch.batch,
                batch.batch_sha256,
                batch.manifest_sha256,
                batch.rows,
                batch.accepted_rows,
                batch.decision,
                serde_json::to_string(&batch.reasons).unwrap_or_default(),
            ],
        )
        .map_err(|e| e.to_string())?;
        let id = tx.last_insert_rowid();
        {
            let mut stmt = tx
                .prepare("INSERT INTO quarantined_rows (batch_id, row, reasons, content) VALUES (?1, ?2, ?3, ?4)")
                .map_err(|e| e.to_string())?;
            for r in rows {
                stmt.execute(params![
                    id,
                    r.row,
                    serde_json::to_string(&r.reasons).unwrap_or_default(),
                    r.content
                ])
                .map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())?;
        Ok(id)
    }

    pub fn batches(&self) -> Result<Vec<BatchRecord>, String> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, received_at, source, batch, batch_sha256, manifest_sha256, rows, accepted_rows, \
                 decision, reasons FROM batches ORDER BY id",
            )
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |r| {
                let reasons: String = r.get(9)?;
                Ok(BatchRecord {
                    id: r.get(0)?,
                    received_at: r.get(1)?,
                    source: r.get(2)?,
                    batch: r.get(3)?,
                    batch_sha256: r.get(4)?,
                    manifest_sha256: r.get(5)?,
                    rows: r.get(6)?,
                    accepted_rows: r.get(7)?,
                    decision: r.get(8)?,
                    reasons: serde_json::from_str(&reasons).unwrap_or_default(),
                })
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    }

    pub fn quarantined(&self, batch_id: Option<i64>) -> Result<Vec<QuarantinedRow>, String> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT batch_id, row, reasons, content FROM quarantined_rows \
                 WHERE ?1 IS NULL OR batch_id = ?1 ORDER BY batch_id, row",
            )
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map(params![batch_id], |r| {
                let reasons: String = r.get(2)?;
                Ok(QuarantinedRow {
                    batch_id: r.get(0)?,
                    row: r.get(1)?,
                    reasons: serde_json::from_str(&reasons).unwrap_or_default(),
                    content: r.get(3)?,
                })
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(decision: &str) -> BatchRecord {
        BatchRecord {
            id: 0,
            received_at: String::new(),
            source: Some("vendor-a".into()),
            batch: "b.csv".into(),
            batch_sha256: "00".repeat(32),
            manifest_sha256: None,
            rows: 3,
            accepted_rows: 2,
            decision: decision.into(),
            reasons: vec!["x".into()],
        }
    }

    #[test]
    fn records_survive_reopening_and_a_failed_batch_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gate.db");
        let mut l = Ledger::open(&path).unwrap();
        let row = QuarantinedRow {
            batch_id: 0,
            row: 1,
            reasons: vec!["schema".into()],
            content: "1,2".into(),
        };
        let id = l
            .record(&batch("partially-accepted"), std::slice::from_ref(&row))
            .unwrap();
        // A duplicate row makes the whole transaction fail: no batch is left behind.
        assert!(l
            .record(&batch("partially-accepted"), &[row.clone(), row.clone()])
            .is_err());
        // An invalid decision is refused by the schema.
        assert!(l.record(&batch("maybe"), &[]).is_err());
        drop(l);
        let l = Ledger::open(&path).unwrap();
        let all = l.batches().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].id, id);
        assert_eq!(l.quarantined(Some(id)).unwrap()[0].content, "1,2");
    }
}
