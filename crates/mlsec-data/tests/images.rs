//! Near-duplicate digits across the bundled MNIST split: training digits
//! copied into the test split after a one-pixel shift, a brightness change
//! or JPEG re-encoding, among genuine test digits. Precision and recall are
//! measured.

use mlsec_data::leakage::images::{near_duplicates, ImageParams, Images};

fn jpeg_roundtrip(px: &[f32], w: u32, h: u32) -> Vec<f32> {
    let img = image::GrayImage::from_raw(
        w,
        h,
        px.iter().map(|&v| v.clamp(0.0, 255.0) as u8).collect(),
    )
    .unwrap();
    let mut buf = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 75)
        .encode_image(&img)
        .unwrap();
    image::load_from_memory(&buf)
        .unwrap()
        .to_luma8()
        .into_raw()
        .into_iter()
        .map(f32::from)
        .collect()
}

#[test]
fn shifted_brightened_and_reencoded_copies_are_found_and_others_are_not() {
    // A quarter of the split keeps the test quick in debug builds; the full
    // split is measured by `mlsec audit leakage --images` in BENCHMARKS.md.
    let full = Images::load("mnist:train").unwrap();
    let train = Images {
        n: 2000,
        pixels: full.pixels[..2000 * 784].to_vec(),
        ..full
    };
    let real_test = Images::load("mnist:test").unwrap();
    let (w, h) = (train.width, train.height);
    let per = w * h;
    let mut test = Images {
        width: w,
        height: h,
        pixels: Vec::new(),
        n: 0,
    };
    let mut planted = std::collections::BTreeMap::new();
    for j in 0..500 {
        if j % 10 == 0 {
            let i = (j * 37) % train.n;
            let src = &train.pixels[i * per..(i + 1) * per];
            let img: Vec<f32> = match (j / 10) % 3 {
                // One pixel right.
                0 => (0..per)
                    .map(|k| if k % w == 0 { 0.0 } else { src[k - 1] })
                    .collect(),
                // Brighter and lower contrast.
                1 => src.iter().map(|v| (v * 0.7 + 60.0).min(255.0)).collect(),
                _ => jpeg_roundtrip(src, w as u32, h as u32),
            };
            test.pixels.extend(img);
            planted.insert(j, i);
        } else {
            test.pixels
                .extend_from_slice(&real_test.pixels[j * per..(j + 1) * per]);
        }
        test.n += 1;
    }
    let found = near_duplicates(&train, &test, &ImageParams::default()).unwrap();
    let mut planted_scores: Vec<f64> = found
        .iter()
        .filter(|(i, j, _)| planted.get(j) == Some(i))
        .map(|f| f.2)
        .collect();
    let mut other_scores: Vec<f64> = found
        .iter()
        .filter(|(i, j, _)| planted.get(j) != Some(i))
        .map(|f| f.2)
        .collect();
    planted_scores.sort_by(f64::total_cmp);
    other_scores.sort_by(f64::total_cmp);
    eprintln!(
        "planted min {:?}; others top {:?}",
        planted_scores.first(),
        other_scores.iter().rev().take(10).collect::<Vec<_>>()
    );
    let tp = found
        .iter()
        .filter(|(i, j, _)| planted.get(j) == Some(i))
        .count() as f64;
    let recall = tp / planted.len() as f64;
    let precision = tp / found.len().max(1) as f64;
    eprintln!(
        "planted {}, found {}, recall {recall:.3}, precision {precision:.3}",
        planted.len(),
        found.len()
    );
    assert!(recall >= 0.95, "recall {recall}");
    assert!(precision >= 0.95, "precision {precision}");
}

/// `n` MNIST training digits from `start`, as their own split.
fn digits(start: usize, n: usize) -> Images {
    let full = Images::load("mnist:train").unwrap();
    let per = full.width * full.height;
    Images {
        n,
        pixels: full.pixels[start * per..(start + n) * per].to_vec(),
        ..full
    }
}

/// A test split of genuine digits, every fifth one a copy of a training
/// digit (some pixel-identical, some brightened), with a repeated copy so
/// that two test images share one training match.
fn planted_test(train: &Images) -> Images {
    let per = train.width * train.height;
    let mut test = digits(4000, 60);
    for j in (0..60).step_by(5) {
        let i = (j * 13) % train.n;
        let src = &train.pixels[i * per..(i + 1) * per];
        let copy: Vec<f32> = if j % 10 == 0 {
            src.to_vec()
        } else {
            src.iter().map(|v| (v * 0.8 + 40.0).min(255.0)).collect()
        };
        test.pixels[j * per..(j + 1) * per].copy_from_slice(&copy);
    }
    let (a, b) = (test.pixels[..per].to_vec(), 7 * per);
    test.pixels[b..b + per].copy_from_slice(&a);
    test
}

#[test]
fn the_training_split_in_chunks_gives_the_whole_splits_audit() {
    use mlsec_data::leakage::{audit_images, images::NearDuplicateSearch};
    let train = digits(0, 300);
    let test = planted_test(&train);
    let p = ImageParams::default();
    let whole = near_duplicates(&train, &test, &p).unwrap();
    assert!(whole.len() >= 10, "{whole:?}");
    let audit_whole = audit_images([Ok(train.clone())], &test, "train", "test", &p).unwrap();
    assert!(!audit_whole.exact_duplicates.is_empty());
    let per = train.width * train.height;
    for chunk in [1, 7, 64, 299] {
        let chunks = || {
            (0..train.n).step_by(chunk).map(|start| {
                let n = chunk.min(train.n - start);
                Ok(Images {
                    n,
                    pixels: train.pixels[start * per..(start + n) * per].to_vec(),
                    ..train.clone()
                })
            })
        };
        let mut search = NearDuplicateSearch::new(&test, &p);
        for c in chunks() {
            search.add_train(&c.unwrap()).unwrap();
        }
        assert_eq!(search.finish(), whole, "chunks of {chunk}");
        let audit = audit_images(chunks(), &test, "train", "test", &p).unwrap();
        assert_same_pairs(&audit, &audit_whole, &format!("chunks of {chunk}"));
        assert_eq!(audit.train_rows, 300);
    }
}

#[test]
fn image_chunks_from_a_folder_and_an_npy_file_join_into_the_whole_split() {
    use mlsec_data::array::{DType, NdArray};
    use mlsec_data::leakage::images::ImageChunks;
    let split = digits(100, 23);
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("digits");
    std::fs::create_dir(&folder).unwrap();
    let per = split.width * split.height;
    for k in 0..split.n {
        let bytes = split.pixels[k * per..(k + 1) * per]
            .iter()
            .map(|&v| v as u8)
            .collect();
        image::GrayImage::from_raw(split.width as u32, split.height as u32, bytes)
            .unwrap()
            .save(folder.join(format!("{k:03}.png")))
            .unwrap();
    }
    let npy = dir.path().join("digits.npy");
    let array = NdArray::new(
        DType::F32,
        vec![split.n, split.height, split.width, 1],
        split.pixels.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
    .unwrap();
    std::fs::write(&npy, mlsec_data::npy::write(&array)).unwrap();
    for spec in [folder.to_str().unwrap(), npy.to_str().unwrap()] {
        let whole = Images::load(spec).unwrap();
        assert_eq!(whole.pixels, split.pixels, "{spec}");
        for chunk in [1, 4, 23, 100] {
            let mut joined = Images {
                pixels: Vec::new(),
                n: 0,
                ..whole.clone()
            };
            for c in ImageChunks::open(spec, chunk).unwrap() {
                let c = c.unwrap();
                assert!(c.n <= chunk);
                assert_eq!((c.width, c.height), (whole.width, whole.height));
                joined.pixels.extend(c.pixels);
                joined.n += c.n;
            }
            assert_eq!(joined.n, whole.n, "{spec}, chunks of {chunk}");
            assert_eq!(joined.pixels, whole.pixels, "{spec}, chunks of {chunk}");
        }
    }
    // A folder whose images differ in size stops with the file named.
    image::GrayImage::new(5, 5)
        .save(folder.join("999.png"))
        .unwrap();
    let err = ImageChunks::open(folder.to_str().unwrap(), 10)
        .unwrap()
        .find_map(Result::err)
        .expect("a size error");
    assert!(
        err.contains("999.png: 5×5, the other images are 28×28"),
        "{err}"
    );
}

#[test]
fn a_test_split_in_blocks_gives_the_whole_splits_audit() {
    use mlsec_data::array::{DType, NdArray};
    use mlsec_data::leakage::{audit_images, audit_images_in_blocks, images::ImageBlocks};
    let train = digits(0, 300);
    // More test images than one read of `ImageBlocks`, so that small
    // budgets make several blocks.
    let mut test = planted_test(&train);
    for _ in 0..5 {
        let more = planted_test(&train);
        test.pixels.extend(more.pixels);
        test.n += more.n;
    }
    let p = ImageParams::default();
    let whole = audit_images([Ok(train.clone())], &test, "train", "test", &p).unwrap();
    assert!(!whole.exact_duplicates.is_empty() && !whole.near_duplicates.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("test.npy");
    let array = NdArray::new(
        DType::F32,
        vec![test.n, test.height, test.width],
        test.pixels.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
    .unwrap();
    std::fs::write(&npy, mlsec_data::npy::write(&array)).unwrap();
    let per_image = mlsec_data::leakage::images::NearDuplicateSearch::bytes_per_test_image(
        test.width,
        test.height,
        p.max_shift,
    );
    for (budget, blocks) in [(0, 2), (per_image * 200, 2), (per_image * 1000, 1)] {
        let opened = ImageBlocks::open(npy.to_str().unwrap(), budget, p.max_shift).unwrap();
        let sizes: Vec<usize> = opened.map(|b| b.unwrap().n).collect();
        assert_eq!(sizes.len(), blocks, "budget {budget}: {sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), test.n);
        let mut opens = 0;
        let open_train = || {
            opens += 1;
            Ok([Ok(train.clone())])
        };
        let test_blocks = ImageBlocks::open(npy.to_str().unwrap(), budget, p.max_shift).unwrap();
        let audit = audit_images_in_blocks(open_train, test_blocks, "train", "test", &p).unwrap();
        assert_eq!(opens, blocks, "the training split is read once per block");
        assert_same_pairs(&audit, &whole, &format!("budget {budget}"));
        assert_eq!((audit.train_rows, audit.test_rows), (300, test.n));
        let messages = |a: &mlsec_data::leakage::Audit| {
            a.findings
                .iter()
                .map(|f| f.message.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(messages(&audit), messages(&whole));
    }
}

/// The same exact and near-duplicate pairs (and correlations).
fn assert_same_pairs(
    got: &mlsec_data::leakage::Audit,
    want: &mlsec_data::leakage::Audit,
    what: &str,
) {
    assert_eq!(got.exact_duplicates, want.exact_duplicates, "{what}");
    assert_eq!(got.near_duplicates, want.near_duplicates, "{what}");
}
