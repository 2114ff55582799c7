use mlsec_model::train::{train, Standard, TrainOptions};
use mlsec_model::zoo::Architecture;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arch: Architecture = serde_json::from_str(&args[1]).unwrap();
    let epochs: usize = args[2].parse().unwrap();
    let (tr, te) = mlsec_model::data::bundled_mnist().unwrap();
    let opts = TrainOptions {
        epochs,
        batch_size: 64,
        learning_rate: 1e-3,
        seed: 1,
    };
    let (_m, rep) = train(&arch, &tr, Some(&te), &opts, &mut Standard, &mut |_p| {}).unwrap();
    println!("{}", serde_json::to_string(&rep).unwrap());
}
