//! 7z archives. nullifAI (ReversingLabs, 2025) shipped PyTorch checkpoints
//! packed with 7z instead of zip: `torch.load` rejects them, but scanners
//! that only open zips saw nothing, and the pickles inside ran for anyone
//! who unpacked the archive first. Every member is handed back to be
//! sniffed like a zip member.
//!
//! Reading is left to `sevenz-rust2`, which was hardened for hostile input
//! (header allocations bounded by the memory limit, coder and stream counts
//! capped, declared sizes checked against what decodes). Around it this
//! module bounds what a bomb can cost: the decoder's dictionary, the bytes
//! kept per member, the bytes decompressed per archive and the number of
//! members, and it decodes on one thread.

use sevenz_rust2::{ArchiveReader, EntryDecision, Error, Password};
use std::io::{Cursor, Read};

/// The signature every 7z archive starts with.
pub const MAGIC: &[u8] = b"7z\xbc\xaf\x27\x1c";

/// Largest decoder state (LZMA dictionary, PPMd model) accepted: 7-Zip's
/// `-mx9` writes a 64 MiB dictionary; larger ones are refused rather than
/// allocated.
const DECODER_MEMORY_KIB: usize = 80 << 10;

pub fn is_7z(data: &[u8]) -> bool {
    data.starts_with(MAGIC)
}

/// How far into a file a 7z archive is looked for: self-extracting stubs
/// are a few hundred KiB.
const EMBEDDED_SEARCH_BYTES: usize = 4 << 20;

/// Where a 7z archive starts inside other data (a self-extracting stub,
/// bytes prepended to hide it), which 7-Zip itself still opens. Only a
/// signature whose start header's CRC holds counts, so six bytes that
/// happen to match inside other data do not.
pub fn find_embedded(data: &[u8]) -> Option<usize> {
    let window = &data[..data.len().min(EMBEDDED_SEARCH_BYTES)];
    memchr::memmem::find_iter(window, MAGIC)
        .filter(|&at| at > 0)
        .find(|&at| start_header_holds(&data[at..]))
}

/// The signature header: magic, version 0.x, then the CRC-32 of the 20
/// bytes that locate the index.
fn start_header_holds(data: &[u8]) -> bool {
    let Some(header) = data.get(..32) else {
        return false;
    };
    let stored = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    header[6] == 0 && crate::zipread::crc32(&header[12..32]) == stored
}

/// Bounds on one archive.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Bytes kept (and analysed) from any one member.
    pub member_bytes: u64,
    /// Bytes decompressed from the whole archive: members after a solid
    /// block's large one can only be reached by decoding it.
    pub total_bytes: u64,
    pub members: usize,
}

/// One member, as far as it could be read.
pub struct Member<'a> {
    pub name: &'a str,
    /// At most [`Budget::member_bytes`] (or what was left of the total).
    pub bytes: &'a [u8],
    /// The member holds more than `bytes`; the members after it in its
    /// solid block were skipped, since reaching them means decoding it all.
    pub cut_short: bool,
    /// Decoding failed partway (corrupt data, a CRC mismatch): `bytes` is
    /// what came out before it.
    pub error: Option<String>,
}

/// Why reading stopped before the end of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// The archive's index could not be read: nothing inside was analysed.
    Unreadable(String),
    /// A block could not be decoded at all (an unsupported or encrypted
    /// coder, a dictionary over the limit, corrupt data).
    Undecodable(String),
    TooManyMembers,
    TotalBytes,
}

/// The members of a 7z archive read within `budget`, each handed to
/// `each` as it is decoded. Returns how many were read and, when reading
/// ended early, why.
pub fn read_members(
    data: &[u8],
    budget: Budget,
    mut each: impl FnMut(Member<'_>),
) -> (usize, Option<Stopped>) {
    let mut reader = match ArchiveReader::new_with_memory_limit(
        Cursor::new(data),
        Password::empty(),
        DECODER_MEMORY_KIB,
    ) {
        Ok(r) => r,
        Err(e) => return (0, Some(Stopped::Unreadable(describe(&e)))),
    };
    // Multi-threaded LZMA2 decoding would hold a dictionary per thread.
    reader.set_thread_count(1);
    let mut read = 0usize;
    let mut decoded = 0u64;
    let mut stopped = None;
    let mut buf = Vec::new();
    let outcome = reader.for_each_entries_with_decision(|entry, stream| {
        if entry.is_directory() || !entry.has_stream() {
            return Ok(EntryDecision::Continue);
        }
        if read >= budget.members {
            stopped = Some(Stopped::TooManyMembers);
            return Ok(EntryDecision::Stop);
        }
        let room = budget
            .member_bytes
            .min(budget.total_bytes.saturating_sub(decoded));
        buf.clear();
        // One byte past the room tells a member that fits from one that
        // does not, without decoding the rest of it. Reserved at once (the
        // declared size bounds it only from below the room): a buffer grown
        // by doubling holds two copies while it moves.
        // Only tried: with a room raised far past memory, a declared size
        // must not be able to abort the process.
        let want = room.min(entry.size()).saturating_add(1);
        if let Ok(want) = usize::try_from(want) {
            let _ = buf.try_reserve_exact(want);
        }
        let result = stream.take(room.saturating_add(1)).read_to_end(&mut buf);
        let cut_short = buf.len() as u64 > room;
        buf.truncate(room as usize);
        decoded += buf.len() as u64;
        read += 1;
        let error = result.err().map(|e| e.to_string());
        let failed = error.is_some();
        each(Member {
            name: entry.name(),
            bytes: &buf,
            cut_short,
            error,
        });
        if failed {
            return Ok(EntryDecision::Stop);
        }
        if cut_short {
            if decoded >= budget.total_bytes {
                stopped = Some(Stopped::TotalBytes);
                return Ok(EntryDecision::Stop);
            }
            return Ok(EntryDecision::SkipBlock);
        }
        Ok(EntryDecision::Continue)
    });
    if let Err(e) = outcome {
        stopped.get_or_insert(Stopped::Undecodable(describe(&e)));
    }
    (read, stopped)
}

/// The crate's `Display` is its `Debug`; findings say it in words.
fn describe(e: &Error) -> String {
    match e {
        Error::PasswordRequired | Error::MaybeBadPassword(_) => ENCRYPTED.to_string(),
        Error::UnsupportedCompressionMethod(m) if m.to_ascii_uppercase().contains("AES") => {
            ENCRYPTED.to_string()
        }
        Error::UnsupportedCompressionMethod(m) => {
            format!("compression method {m} is not one mlsec decodes")
        }
        Error::MaxMemLimited { actaul_kb, .. } => format!(
            "decoding needs {} MiB for its dictionary or model, over the {} MiB mlsec allows",
            actaul_kb.div_ceil(1024),
            DECODER_MEMORY_KIB / 1024
        ),
        Error::BadSignature(_) => "not a 7z signature".to_string(),
        Error::UnsupportedVersion { major, minor } => {
            format!("7z format version {major}.{minor} is not supported")
        }
        Error::ChecksumVerificationFailed => "a CRC does not match".to_string(),
        Error::NextHeaderCrcMismatch => "the index's CRC does not match".to_string(),
        Error::Io(e, context) if context.is_empty() => e.to_string(),
        Error::Io(e, context) => format!("{context}: {e}"),
        Error::Other(m) | Error::Unsupported(m) => m.to_string(),
        Error::ExternalUnsupported => "the index is stored outside the archive".to_string(),
        other => format!("malformed index ({other})"),
    }
}

const ENCRYPTED: &str = "the content is encrypted: a password is needed to read it";
