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
