//! `mlsec audit leakage` on splits made here with planted leaks: exact
//! copies, near-duplicate texts (a few words changed), training rows from
//! after the split and a feature that encodes the label. Recall and
//! precision of the near-duplicate search are measured.

mod common;
use common::{json_run, mlsec, npy_bytes};

const WORDS: &[&str] = &[
    "model", "data", "training", "gradient", "loss", "batch", "layer", "weights", "robust",
    "attack", "signal", "vector", "sample", "noise", "label", "feature", "stream", "window",
    "kernel", "tensor", "audit", "secure", "pipeline", "review", "policy", "deploy", "serve",
    "query", "budget", "metric", "river", "mountain", "forest", "ocean", "city", "market",
    "garden", "winter", "summer", "bridge",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn doc(rng: &mut Rng) -> Vec<&'static str> {
    (0..12 + rng.below(8))
        .map(|_| WORDS[rng.below(WORDS.len())])
        .collect()
}

#[test]
fn planted_leaks_are_found_with_measured_recall_and_precision() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let n_train = 3000;
    let mut train_docs: Vec<Vec<&str>> = (0..n_train).map(|_| doc(&mut rng)).collect();
    let mut train = String::from("id,text,amount,day,leak,label\n");
    let mut labels = Vec::new();
    for (i, d) in train_docs.iter_mut().enumerate() {
        let label = rng.below(2);
        labels.push(label);
        // Rows 0..40 are dated after the split (2026-03-01).
        let day = if i < 40 { "2026-03-05" } else { "2026-02-10" };
        let amount = (rng.below(10_000) as f64) / 100.0;
        let leak = label as f64 * 10.0 + (rng.below(100) as f64) / 100.0;
        train.push_str(&format!(
            "{i},{},{amount},{day},{leak},{label}\n",
            d.join(" ")
        ));
    }
    std::fs::write(dir.path().join("train.csv"), &train).unwrap();
    // Test: 100 near-duplicates (2 of the words changed), 20 exact copies, the rest fresh.
    let mut test = String::from("id,text,amount,day,leak,label\n");
    let mut planted_near = Vec::new();
    let train_rows: Vec<&str> = train.lines().skip(1).collect();
    for j in 0..1000 {
        if j < 20 {
            let src = train_rows[100 + j];
            let rest = src.split_once(',').unwrap().1;
            test.push_str(&format!("{},{rest}\n", 100_000 + j));
        } else if j < 120 {
            let i = 500 + 7 * j;
            let mut d = train_docs[i].clone();
            for _ in 0..2 {
                let at = rng.below(d.len());
                d[at] = WORDS[rng.below(WORDS.len())];
            }
            planted_near.push((i, j));
            test.push_str(&format!(
                "{},{},1.5,2026-03-10,0.5,0\n",
                100_000 + j,
                d.join(" ")
            ));
        } else {
            test.push_str(&format!(
                "{},{},2.5,2026-03-10,0.5,1\n",
                100_000 + j,
                doc(&mut rng).join(" ")
            ));
        }
    }
    std::fs::write(dir.path().join("test.csv"), &test).unwrap();
    let args = [
        "--train",
        "train.csv",
        "--test",
        "test.csv",
        "--label",
        "label",
        "--ignore",
        "id",
        "--text",
        "text",
        "--time",
        "day",
        "--split-time",
        "2026-03-01",
    ];
    let run = |extra: &[&str]| audit_json(dir.path(), &args, extra, 1);
    let r = run(&[]);
    // The test split held in blocks (64 KiB of CSV each, the smallest):
    // the training split is read once per block, with the same report.
    let mut blocks = run(&["--test-memory", "0"]);
    assert_same_in_blocks(&mut blocks, &r);
    let res = &r["results"];
    let exact: Vec<(u64, u64)> = res["exact_duplicates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
        .collect();
    assert_eq!(exact, (0..20).map(|j| (100 + j, j)).collect::<Vec<_>>());
    let found: std::collections::BTreeSet<(u64, u64)> = res["near_duplicates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
        .collect();
    let planted: std::collections::BTreeSet<(u64, u64)> = planted_near
        .iter()
        .map(|&(i, j)| (i as u64, j as u64))
        .collect();
    let tp = found.intersection(&planted).count() as f64;
    let recall = tp / planted.len() as f64;
    // Found pairs outside the planted set must still be real near-copies
    // (random 12–19 word texts over 40 words can collide); count those
    // among test rows that were not planted as false positives.
    let stray = found.iter().filter(|(_, j)| !(20..120).contains(j)).count() as f64;
    let precision = (found.len() as f64 - stray) / found.len().max(1) as f64;
    eprintln!(
        "near-duplicates: {} found, {} planted, recall {recall:.3}, precision {precision:.3}",
        found.len(),
        planted.len()
    );
    assert!(recall >= 0.95, "recall {recall}");
    assert!(precision >= 0.99, "precision {precision}");
    assert_eq!(res["newer_training_rows"].as_array().unwrap().len(), 40);
    let leaking: Vec<&str> = res["leaking_features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[0].as_str().unwrap())
        .collect();
    assert_eq!(leaking, vec!["leak"]);
    let rules: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for want in ["MLS-DATA-012", "MLS-DATA-013", "MLS-DATA-014"] {
        assert!(rules.contains(&want), "{rules:?}");
    }
}

#[test]
fn image_copies_across_folders_are_found_and_distinct_images_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (dir.path().join("train"), dir.path().join("test"));
    std::fs::create_dir_all(&train).unwrap();
    std::fs::create_dir_all(&test).unwrap();
    // 16×16 images with a bright bar at a different place each.
    let make = |k: u32| {
        image::GrayImage::from_fn(16, 16, |x, y| {
            let on = (x + 2 * k) % 16 < 3 || (y * (k % 5 + 1)) % 16 < 2;
            image::Luma([if on { 220 } else { 20 }])
        })
    };
    for k in 0..12 {
        make(k).save(train.join(format!("{k:02}.png"))).unwrap();
    }
    // Test: a brightened copy of 3, a one-pixel-shifted copy of 7, and two new images.
    let bright = image::GrayImage::from_fn(16, 16, |x, y| {
        image::Luma([(make(3).get_pixel(x, y)[0] as f32 * 0.8 + 40.0) as u8])
    });
    bright.save(test.join("a.png")).unwrap();
    let src = make(7);
    let shifted = image::GrayImage::from_fn(16, 16, |x, y| {
        if x == 0 {
            image::Luma([20])
        } else {
            *src.get_pixel(x - 1, y)
        }
    });
    shifted.save(test.join("b.png")).unwrap();
    for (name, k) in [("c.png", 3u32), ("d.png", 5)] {
        let other = image::GrayImage::from_fn(16, 16, |x, y| {
            image::Luma([if (x * y + k * 7) % 11 < 3 { 200 } else { 10 }])
        });
        other.save(test.join(name)).unwrap();
    }
    let run = |extra: &[&str], code: i32| {
        let args = ["--train", "train", "--test", "test", "--images"];
        let r = audit_json(dir.path(), &args, extra, code);
        let pairs: Vec<(u64, u64)> = r["results"]["near_duplicates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
            .collect();
        pairs
    };
    assert_eq!(run(&[], 1), vec![(3, 0), (7, 1)]);
    // Without shifts the shifted copy is not the same image any more.
    assert_eq!(run(&["--image-shift", "0"], 1), vec![(3, 0)]);
    assert_eq!(run(&["--image-shift", "2"], 1), vec![(3, 0), (7, 1)]);
    for (flag, value, says) in [
        ("--image-shift", "9", "at most 8 pixels"),
        ("--image-candidates", "1.5", "from -1 to 1"),
        ("--image-threshold", "NaN", "from -1 to 1"),
    ] {
        audit_fails_with(
            dir.path(),
            &[
                "--train", "train", "--test", "test", "--images", flag, value,
            ],
            says,
        );
    }
}

#[test]
fn a_sampled_target_leakage_screen_says_so_and_still_finds_the_leak() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5eed_2026_1123_0002);
    let mut train = String::from("amount,leak,label\n");
    for _ in 0..5000 {
        let label = rng.below(2);
        train.push_str(&format!(
            "{},{},{label}\n",
            rng.below(1000),
            label * 100 + rng.below(50)
        ));
    }
    std::fs::write(dir.path().join("train.csv"), &train).unwrap();
    std::fs::write(dir.path().join("test.csv"), "amount,leak,label\n1,2,0\n").unwrap();
    let args = [
        "audit",
        "leakage",
        "--train",
        "train.csv",
        "--test",
        "test.csv",
        "--label",
        "label",
        "--screen-rows",
        "300",
    ];
    let mut cmd = mlsec();
    cmd.current_dir(dir.path()).args(args);
    let r = json_run(cmd, 1);
    assert_eq!(r["results"]["screened_rows"], 300);
    assert_eq!(r["results"]["leaking_features"][0][0], "leak");
    let out = mlsec().current_dir(dir.path()).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("screened on a uniform sample of 300 training rows"),
        "{text}"
    );
    assert!(
        text.contains("uniform sample of 300 of 5000 rows"),
        "{text}"
    );
}

#[test]
fn an_option_naming_a_missing_column_fails_before_the_split_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.csv"), "a,b\n1,2\n").unwrap();
    std::fs::write(dir.path().join("test.csv"), "a,b\n1,2\n").unwrap();
    audit_fails_with(
        dir.path(),
        &[
            "--train",
            "train.csv",
            "--test",
            "test.csv",
            "--text",
            "body",
        ],
        "train.csv has no column `body`",
    );
}

/// The JSON report of `mlsec audit leakage ARGS EXTRA` run in `dir`, which
/// must exit with `code`.
fn audit_json(
    dir: &std::path::Path,
    args: &[&str],
    extra: &[&str],
    code: i32,
) -> serde_json::Value {
    let mut cmd = mlsec();
    cmd.current_dir(dir)
        .args(["audit", "leakage"])
        .args(args)
        .args(extra);
    json_run(cmd, code)
}

/// `mlsec audit leakage ARGS` in `dir` exits 2 and says `says`.
fn audit_fails_with(dir: &std::path::Path, args: &[&str], says: &str) {
    let out = mlsec()
        .current_dir(dir)
        .args(["audit", "leakage"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(says), "{args:?}: {err}");
}

#[test]
fn a_test_split_held_in_blocks_is_audited_the_same() {
    let dir = tempfile::tempdir().unwrap();
    // 8×8 byte images: bars at different places, 40 for training; 600 for
    // testing (more than one read of 256), every 50th a training image,
    // every 50th + 25 a brightened one.
    let image = |k: usize| -> Vec<u8> {
        (0..64)
            .map(|p| {
                let (x, y) = (p % 8, p / 8);
                if (x * 3 + k) % 8 < 2 || (y * (k % 5 + 1) + k / 7) % 8 == 0 {
                    200
                } else {
                    (k * 13 + p * 7) as u8 % 40
                }
            })
            .collect()
    };
    let train: Vec<u8> = (0..40).flat_map(image).collect();
    let test: Vec<u8> = (0..600)
        .flat_map(|j| match j % 50 {
            0 => image(j / 50),
            25 => image(j / 50 + 1)
                .iter()
                .map(|&v| (v as f32 * 0.8 + 30.0) as u8)
                .collect(),
            _ => image(1000 + j),
        })
        .collect();
    std::fs::write(
        dir.path().join("train.npy"),
        npy_bytes("|u1", "(40, 8, 8)", &train),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("test.npy"),
        npy_bytes("|u1", "(600, 8, 8)", &test),
    )
    .unwrap();
    let args = ["--images", "--train", "train.npy", "--test", "test.npy"];
    let run = |extra: &[&str]| audit_json(dir.path(), &args, extra, 1);
    let whole = run(&[]);
    let exact = whole["results"]["exact_duplicates"]
        .as_array()
        .unwrap()
        .len();
    let near = whole["results"]["near_duplicates"]
        .as_array()
        .unwrap()
        .len();
    assert!(exact >= 12 && near >= 12, "{}", whole["results"]);
    let mut blocks = run(&["--test-memory", "0"]);
    assert_same_in_blocks(&mut blocks, &whole);
}

/// `blocks`, a report of the test split held in blocks, says there were
/// several and is otherwise `whole`.
fn assert_same_in_blocks(blocks: &mut serde_json::Value, whole: &serde_json::Value) {
    let held = blocks["results"]
        .as_object_mut()
        .unwrap()
        .remove("test_blocks");
    assert!(
        held.as_ref()
            .and_then(|b| b.as_u64())
            .is_some_and(|b| b >= 2),
        "{held:?}"
    );
    assert!(whole["results"].get("test_blocks").is_none());
    assert_eq!(blocks["results"], whole["results"]);
    assert_eq!(blocks["findings"], whole["findings"]);
}

#[test]
fn a_parquet_test_split_is_held_in_blocks_too() {
    let dir = tempfile::tempdir().unwrap();
    // The test split: 3,000 Parquet rows (f, g, name, target); the
    // training split copies every tenth of them.
    common::write_parquet(&dir.path().join("test.parquet"), 3000);
    let mut train = String::from("f,g,name,target\n");
    for i in (0..3000).step_by(10) {
        train.push_str(&format!(
            "{},{},item-{i},{}\n",
            i as f64 * 0.5,
            i * 7 % 13,
            i % 3
        ));
    }
    train.push_str("0.25,1,item-x,0\n");
    std::fs::write(dir.path().join("train.csv"), train).unwrap();
    let args = [
        "--train",
        "train.csv",
        "--test",
        "test.parquet",
        "--label",
        "target",
    ];
    let run = |extra: &[&str]| audit_json(dir.path(), &args, extra, 1);
    let whole = run(&[]);
    let pairs = whole["results"]["exact_duplicates"].as_array().unwrap();
    assert_eq!(pairs.len(), 300);
    assert_eq!(pairs[1], serde_json::json!([1, 10]));
    // Read 1,024 rows at a time, one block each.
    let mut blocks = run(&["--test-memory", "0"]);
    assert_same_in_blocks(&mut blocks, &whole);
}
