//! The bundled models and data are exactly what models/MANIFEST.json describes.

mod common;

use sha2::{Digest, Sha256};

#[test]
fn manifest_sha256_and_sizes_match_the_committed_files() {
    let dir = common::root().join("models");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("MANIFEST.json")).expect("MANIFEST.json")).expect("JSON");
    let files = m["files"].as_object().expect("files");
    assert!(files.len() >= 12 + 2 + 1 + 3 + 2, "{} files", files.len());
    let mut total = 0u64;
    for (rel, entry) in files {
        let bytes = std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(sha, entry["sha256"].as_str().unwrap(), "{rel}");
        assert_eq!(bytes.len() as u64, entry["bytes"].as_u64().unwrap(), "{rel}");
        total += bytes.len() as u64;
    }
    assert!(total < 40 << 20, "models/ holds {total} bytes");
    for arch in ["unet", "pspnet"] {
        for domain in ["acdc", "t1", "rvsc"] {
            for task in ["seg", "ae"] {
                let name = format!("{arch}-{domain}-{task}");
                assert!(files.contains_key(&format!("{name}.onnx")), "{name}");
                let s = &m["scores"][&name];
                if task == "seg" {
                    assert!(s["own_domain_mean_fg_dice"].as_f64().unwrap() >= 0.85, "{name}: {s}");
                } else {
                    assert!(s["val_recon_mse"].as_f64().is_some(), "{name}");
                }
            }
        }
    }
}
