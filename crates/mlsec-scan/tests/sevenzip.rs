//! 7z archives: members are read within the budget, each is scanned like a
//! zip member, and no input makes the reader panic or exceed its bounds.
//! Archives here are written by hand with the Copy coder, so a test can
//! shape members, blocks and sizes exactly; the fixture corpus holds
//! archives py7zr wrote with every coder.

use mlsec_core::Severity;
use mlsec_scan::sevenzip::{read_members, Budget, Stopped};
use mlsec_scan::{scan_bytes, zipread, Kind, ScanOptions};
use proptest::prelude::*;

/// 7z's variable-length NUMBER: the first byte's leading ones count the
/// little-endian bytes that follow; its other bits are the value's top.
fn number(out: &mut Vec<u8>, v: u64) {
    for n in 0..8u32 {
        if v < 1u64 << (7 * (n + 1)) {
            let top = (v >> (8 * n)) as u8;
            out.push(!(0xFFu8 >> n) | top);
            out.extend_from_slice(&v.to_le_bytes()[..n as usize]);
            return;
        }
    }
    out.push(0xFF);
    out.extend_from_slice(&v.to_le_bytes());
}

/// A 7z archive of `members` stored with the Copy coder: one block for all
/// of them when `solid`, else one block each. Members must not be empty.
fn stored_7z(members: &[(&str, &[u8])], solid: bool) -> Vec<u8> {
    stored_7z_declaring(members, solid, None)
}

/// [`stored_7z`], with each block's unpacked size declared as `declared`
/// when given, whatever it holds.
fn stored_7z_declaring(members: &[(&str, &[u8])], solid: bool, declared: Option<u64>) -> Vec<u8> {
    let blocks: Vec<Vec<usize>> = if solid {
        vec![(0..members.len()).collect()]
    } else {
        (0..members.len()).map(|i| vec![i]).collect()
    };
    let packed: Vec<u8> = members
        .iter()
        .flat_map(|(_, b)| b.iter().copied())
        .collect();
    let block_size = |b: &Vec<usize>| b.iter().map(|&i| members[i].1.len() as u64).sum::<u64>();
    let mut h = vec![0x01, 0x04, 0x06];
    number(&mut h, 0);
    number(&mut h, blocks.len() as u64);
    h.push(0x09);
    for b in &blocks {
        number(&mut h, block_size(b));
    }
    h.extend_from_slice(&[0x00, 0x07, 0x0B]);
    number(&mut h, blocks.len() as u64);
    h.push(0x00);
    for _ in &blocks {
        // One coder, a one-byte id, no properties: Copy.
        h.extend_from_slice(&[0x01, 0x01, 0x00]);
    }
    h.push(0x0C);
    for b in &blocks {
        number(&mut h, declared.unwrap_or_else(|| block_size(b)));
    }
    h.extend_from_slice(&[0x00, 0x08, 0x0D]);
    for b in &blocks {
        number(&mut h, b.len() as u64);
    }
    h.push(0x09);
    for b in &blocks {
        for &i in &b[..b.len() - 1] {
            number(&mut h, members[i].1.len() as u64);
        }
    }
    h.extend_from_slice(&[0x00, 0x00, 0x05]);
    number(&mut h, members.len() as u64);
    let names: Vec<u8> = members
        .iter()
        .flat_map(|(n, _)| n.encode_utf16().chain([0]).flat_map(u16::to_le_bytes))
        .collect();
    h.push(0x11);
    number(&mut h, names.len() as u64 + 1);
    h.push(0x00);
    h.extend_from_slice(&names);
    h.extend_from_slice(&[0x00, 0x00]);

    let mut start = Vec::new();
    start.extend_from_slice(&(packed.len() as u64).to_le_bytes());
    start.extend_from_slice(&(h.len() as u64).to_le_bytes());
    start.extend_from_slice(&zipread::crc32(&h).to_le_bytes());
    let mut out = b"7z\xbc\xaf\x27\x1c\x00\x04".to_vec();
    out.extend_from_slice(&zipread::crc32(&start).to_le_bytes());
    out.extend_from_slice(&start);
    out.extend_from_slice(&packed);
    out.extend_from_slice(&h);
    out
}

const PAYLOAD: &[u8] = b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.";

fn budget(member_bytes: u64, total_bytes: u64, members: usize) -> Budget {
    Budget {
        member_bytes,
        total_bytes,
        members,
    }
}

/// What `read_members` handed out for one member.
struct Seen {
    name: String,
    bytes: Vec<u8>,
    cut_short: bool,
    failed: bool,
}

fn read_all(data: &[u8], b: Budget) -> (Vec<Seen>, Option<Stopped>) {
    let mut seen = Vec::new();
    let (count, stopped) = read_members(data, b, |m| {
        seen.push(Seen {
            name: m.name.to_string(),
            bytes: m.bytes.to_vec(),
            cut_short: m.cut_short,
            failed: m.error.is_some(),
        });
    });
    assert_eq!(count, seen.len());
    (seen, stopped)
}

#[test]
fn every_member_is_read_in_solid_and_separate_blocks() {
    let members: &[(&str, &[u8])] = &[
        ("a.txt", b"hello"),
        ("dir/model.pkl", PAYLOAD),
        ("c", b"xyz"),
    ];
    for solid in [true, false] {
        let (seen, stopped) = read_all(&stored_7z(members, solid), budget(1 << 20, 1 << 22, 100));
        assert_eq!(stopped, None);
        let got: Vec<(&str, &[u8])> = seen
            .iter()
            .map(|m| {
                assert!(!m.cut_short && !m.failed);
                (m.name.as_str(), m.bytes.as_slice())
            })
            .collect();
        assert_eq!(got, members, "solid: {solid}");
    }
}

#[test]
fn a_member_over_the_limit_is_cut_and_its_solid_block_left() {
    let big = vec![7u8; 100];
    let members: &[(&str, &[u8])] = &[("big", &big), ("after", b"tail")];
    let (seen, stopped) = read_all(&stored_7z(members, true), budget(10, 1000, 100));
    assert_eq!(stopped, None);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].bytes, vec![7u8; 10]);
    assert!(seen[0].cut_short);
    // In separate blocks the next member is still reached.
    let (seen, _) = read_all(&stored_7z(members, false), budget(10, 1000, 100));
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].bytes, b"tail");
}

#[test]
fn the_archive_total_and_member_count_stop_reading() {
    let m = vec![1u8; 40];
    let members: Vec<(&str, &[u8])> = (0..5).map(|_| ("m", m.as_slice())).collect();
    let data = stored_7z(&members, false);
    let (seen, stopped) = read_all(&data, budget(100, 100, 100));
    assert_eq!(stopped, Some(Stopped::TotalBytes));
    let total: usize = seen.iter().map(|s| s.bytes.len()).sum();
    assert!(total <= 100, "{total}");
    let (seen, stopped) = read_all(&data, budget(100, 10_000, 3));
    assert_eq!(stopped, Some(Stopped::TooManyMembers));
    assert_eq!(seen.len(), 3);
}

#[test]
fn a_declared_size_past_memory_cannot_abort_an_unlimited_read() {
    let data = stored_7z_declaring(&[("model.pkl", PAYLOAD)], true, Some(1 << 60));
    let (seen, stopped) = read_all(&data, budget(u64::MAX, u64::MAX, 100));
    // The packed stream ends long before: whatever came out is handed on
    // with the error, or the block is refused; either way the read ends.
    assert!(seen.len() <= 1);
    assert!(seen
        .iter()
        .all(|m| m.failed || m.bytes.len() <= PAYLOAD.len()));
    assert!(
        stopped.is_some() || seen.iter().any(|m| m.failed),
        "{stopped:?}"
    );
}

#[test]
fn an_archive_without_its_index_is_unreadable() {
    let data = stored_7z(&[("model.pkl", PAYLOAD)], true);
    let cut = &data[..data.len() - 10];
    let (seen, stopped) = read_all(cut, budget(1 << 20, 1 << 22, 100));
    assert!(seen.is_empty());
    assert!(
        matches!(stopped, Some(Stopped::Unreadable(_))),
        "{stopped:?}"
    );
}

#[test]
fn a_pickle_in_a_7z_is_found_with_its_member_and_offset() {
    let data = stored_7z(&[("notes", b"plain text"), ("w/model.bin", PAYLOAD)], true);
    let scan = scan_bytes("x.7z", &data, &ScanOptions::default());
    assert_eq!(scan.kind, Kind::SevenZip);
    let critical: Vec<_> = scan
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .collect();
    assert_eq!(critical.len(), 1, "{:?}", scan.findings);
    assert_eq!(critical[0].location.member.as_deref(), Some("w/model.bin"));
    assert!(critical[0].location.offset.is_some());
}

#[test]
fn what_the_budget_leaves_unread_is_reported() {
    let big = vec![0u8; 4096];
    let data = stored_7z(&[("zeros", &big), ("model.pkl", PAYLOAD)], true);
    let opts = ScanOptions {
        max_member_bytes: 1024,
        ..ScanOptions::default()
    };
    let scan = scan_bytes("bomb.7z", &data, &opts);
    let messages: Vec<&str> = scan
        .findings
        .iter()
        .filter(|f| f.rule == "MLS-SCAN-005")
        .map(|f| f.message.as_str())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("solid block were not analysed")),
        "{messages:?}"
    );
    // With the default limit the pickle behind the zeros is reached.
    let scan = scan_bytes("bomb.7z", &data, &ScanOptions::default());
    assert!(scan
        .findings
        .iter()
        .any(|f| f.severity == Severity::Critical));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Anything after the signature is read without panicking, and no more
    /// than the budget is handed out.
    #[test]
    fn any_bytes_after_the_signature_stay_in_budget(tail in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut data = b"7z\xbc\xaf\x27\x1c\x00\x04".to_vec();
        data.extend_from_slice(&tail);
        let (seen, _) = read_all(&data, budget(64, 128, 4));
        prop_assert!(seen.len() <= 4);
        prop_assert!(seen.iter().map(|s| s.bytes.len()).sum::<usize>() <= 128);
    }

    /// A valid archive with bytes overwritten anywhere (index, sizes,
    /// CRCs, data) is read without panicking, within the budget.
    #[test]
    fn corrupted_archives_stay_in_budget(
        sizes in prop::collection::vec(1usize..200, 1..6),
        solid in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let bodies: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, &n)| vec![i as u8; n]).collect();
        let members: Vec<(&str, &[u8])> = bodies.iter().map(|b| ("member", b.as_slice())).collect();
        let mut data = stored_7z(&members, solid);
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        let (seen, _) = read_all(&data, budget(150, 300, 5));
        prop_assert!(seen.len() <= 5);
        prop_assert!(seen.iter().all(|s| s.bytes.len() <= 150));
        prop_assert!(seen.iter().map(|s| s.bytes.len()).sum::<usize>() <= 300);
    }

    /// Unchanged archives give back exactly what was stored.
    #[test]
    fn stored_members_come_back_unchanged(
        sizes in prop::collection::vec(1usize..300, 1..6),
        solid in any::<bool>(),
    ) {
        let bodies: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, &n)| (0..n).map(|j| (i * 31 + j) as u8).collect()).collect();
        let members: Vec<(&str, &[u8])> = bodies.iter().map(|b| ("m", b.as_slice())).collect();
        let (seen, stopped) = read_all(&stored_7z(&members, solid), budget(1 << 20, 1 << 22, 100));
        prop_assert_eq!(stopped, None);
        let got: Vec<Vec<u8>> = seen.into_iter().map(|s| s.bytes).collect();
        prop_assert_eq!(got, bodies);
    }
}

#[test]
fn a_7z_behind_a_self_extracting_stub_is_found_and_reported() {
    let archive = stored_7z(&[("model.pkl", PAYLOAD)], true);
    let mut sfx = b"MZ\x90\x00 stub that unpacks what follows ".repeat(100);
    // A lone signature without a valid start header is not an archive.
    sfx.extend_from_slice(b"7z\xbc\xaf\x27\x1c garbage");
    let at = sfx.len();
    sfx.extend_from_slice(&archive);
    let scan = scan_bytes("setup.exe", &sfx, &ScanOptions::default());
    assert_eq!(scan.kind, Kind::SevenZip);
    assert!(scan
        .findings
        .iter()
        .any(|f| f.rule == "MLS-SCAN-005" && f.location.offset == Some(at as u64)));
    assert!(scan
        .findings
        .iter()
        .any(|f| f.severity == Severity::Critical
            && f.location.member.as_deref() == Some("model.pkl")));
    // The stub alone is nothing.
    let scan = scan_bytes("setup.exe", &sfx[..at], &ScanOptions::default());
    assert_eq!(scan.kind, Kind::Other);
    assert!(scan.findings.is_empty());
}
