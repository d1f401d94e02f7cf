//! Tied parameters: one tensor read by several layers (a module applied twice, as in a
//! recurrent convolution, or weights tied by hand). A swap replaces the tensor, so it
//! changes every layer that reads it at once: the rows of those layers are one and the same
//! swap, each counted in the reuse shares and the RN verdict. Said, never silent.

use std::collections::BTreeMap;

use super::layers::LayerScan;

/// The parameters read by more than one layer: each tensor's name with the layers and
/// kinds that read it (`conv 2 W`), in graph order; tensors in order of first use.
pub fn shared(sc: &LayerScan) -> Vec<(String, Vec<String>)> {
    let mut users: BTreeMap<&str, (usize, Vec<String>)> = BTreeMap::new();
    let uses = sc.layers.iter().flat_map(|layer| layer.params.iter().map(move |p| (layer, p)));
    for (order, (layer, p)) in uses.enumerate() {
        let e = users.entry(&p.name).or_insert((order, Vec::new()));
        e.1.push(format!("{} {} {} ({})", layer.family, layer.index, p.kind, layer.node));
    }
    let mut out: Vec<_> = users.into_iter().filter(|(_, (_, u))| u.len() > 1).collect();
    out.sort_by_key(|(_, (order, _))| *order);
    out.into_iter().map(|(name, (_, u))| (name.to_string(), u)).collect()
}

/// One line about the tied parameters, or none.
pub fn summary(sc: &LayerScan) -> Option<String> {
    let tied = shared(sc);
    let (name, users) = tied.first()?;
    Some(format!(
        "{} parameter tensor(s) are read by more than one layer (tied weights): a swap replaces the tensor in every \
         layer that reads it, so those layers' rows are one and the same swap, each counted in the reuse shares and \
         the RN verdict. First: '{name}' is {}",
        tied.len(),
        users.join(" and ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layers::{Family, Kind, Layer, Param};
    use crate::model::tensor::DType;
    use crate::model::ParamSource;

    fn layer(family: Family, index: usize, params: &[(Kind, &str)]) -> Layer {
        Layer {
            family,
            index,
            node_index: index,
            node: format!("n{index}"),
            op: "Conv".into(),
            epsilon: 0.0,
            w_in_out: false,
            params: params
                .iter()
                .map(|(kind, name)| Param {
                    kind: *kind,
                    name: name.to_string(),
                    source: ParamSource::Initializer(0),
                    dims: vec![1],
                    dtype: DType::Float32,
                })
                .collect(),
        }
    }

    #[test]
    fn a_tensor_read_by_two_layers_is_named_with_both() {
        let sc = LayerScan {
            layers: vec![
                layer(Family::Conv, 1, &[(Kind::W, "a.w"), (Kind::B, "a.b")]),
                layer(Family::Conv, 2, &[(Kind::W, "r.w"), (Kind::B, "r.b")]),
                layer(Family::Conv, 3, &[(Kind::W, "r.w"), (Kind::B, "r.b")]),
            ],
            skipped: vec![],
            quantized: vec![],
        };
        let tied = shared(&sc);
        assert_eq!(tied.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["r.w", "r.b"]);
        let line = summary(&sc).unwrap();
        assert!(line.starts_with("2 parameter tensor(s) are read by more than one layer"), "{line}");
        assert!(line.ends_with("First: 'r.w' is conv 2 W (n2) and conv 3 W (n3)"), "{line}");
        let untied = LayerScan { layers: sc.layers[..2].to_vec(), ..sc };
        assert_eq!(summary(&untied), None);
    }
}
