//! Pretty-printed JSON for reports.

use serde::Serialize;
use std::io::{self, Write};

/// Pretty-prints `value` and a final newline to `out`. serde_json emits one
/// small write per token; into a `dyn Write` each would be a virtual call
/// (a tenth of the time of rendering a 2,000-file scan report), so they go
/// through a buffer of this function's own, which `out` sees in large writes.
pub(crate) fn write_pretty_json<T: Serialize + ?Sized>(
    value: &T,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut buffered = io::BufWriter::with_capacity(64 << 10, out);
    // `io::Error::from` keeps an I/O error's kind (a closed pipe stays `BrokenPipe`).
    serde_json::to_writer_pretty(&mut buffered, value).map_err(io::Error::from)?;
    buffered.write_all(b"\n")?;
    buffered.flush()
}
