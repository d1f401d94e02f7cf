//! Pixel and label values as held between loading and preprocessing: float32 when every
//! value of the image (or label map) is exactly a float32, as 8- and 16-bit integers,
//! booleans, float16 and float32 data always are, else float64. The usual data then takes
//! half the memory of float64, and every value reads back as the very f64 it was stored
//! as: what is computed from it (normalization in f64) does not change by a bit.

use ndarray::{Array, Array1, Array3, Axis, Dimension, Ix1, Ix2, Ix3, ShapeBuilder, ShapeError};

/// Values as held: float32 where that is exact, else float64.
#[derive(Debug, Clone)]
pub enum Values<D: Dimension> {
    /// Every value is exactly a float32.
    F32(Array<f32, D>),
    /// At least one value is not a float32.
    F64(Array<f64, D>),
}

/// Whether `v` reads back from float32 as the same f64 (NaN included: it stays NaN).
pub fn exact_f32(v: f64) -> bool {
    f64::from(v as f32) == v || v.is_nan()
}

impl<D: Dimension> Values<D> {
    /// Hold `values` as float32 when every one of them is exactly a float32.
    pub fn narrowed(values: Array<f64, D>) -> Self {
        if values.iter().all(|&v| exact_f32(v)) {
            Values::F32(values.mapv(|v| v as f32))
        } else {
            Values::F64(values)
        }
    }

    /// The shape as a pattern (`(c, h, w)` for an image).
    pub fn dim(&self) -> D::Pattern {
        match self {
            Values::F32(a) => a.dim(),
            Values::F64(a) => a.dim(),
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Values::F32(a) => a.shape(),
            Values::F64(a) => a.shape(),
        }
    }

    /// The values as f64, in logical order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = f64> + '_> {
        match self {
            Values::F32(a) => Box::new(a.iter().map(|&v| f64::from(v))),
            Values::F64(a) => Box::new(a.iter().copied()),
        }
    }

    /// The values as an f64 array (a copy of one image, for preprocessing).
    pub fn to_f64(&self) -> Array<f64, D> {
        match self {
            Values::F32(a) => a.mapv(f64::from),
            Values::F64(a) => a.clone(),
        }
    }

    /// The value at `index`.
    pub fn at(&self, index: D::Pattern) -> f64
    where
        D::Pattern: ndarray::NdIndex<D>,
    {
        match self {
            Values::F32(a) => f64::from(a[index]),
            Values::F64(a) => a[index],
        }
    }

    /// The values with their indices, as f64, in logical order.
    pub fn indexed_iter(&self) -> Box<dyn Iterator<Item = (D::Pattern, f64)> + '_> {
        match self {
            Values::F32(a) => Box::new(a.indexed_iter().map(|(i, &v)| (i, f64::from(v)))),
            Values::F64(a) => Box::new(a.indexed_iter().map(|(i, &v)| (i, v))),
        }
    }

    /// The values taken at `order` along `axis` (as [`ndarray::ArrayBase::select`]).
    pub fn select(&self, axis: Axis, order: &[usize]) -> Self
    where
        D: ndarray::RemoveAxis,
    {
        match self {
            Values::F32(a) => Values::F32(a.select(axis, order)),
            Values::F64(a) => Values::F64(a.select(axis, order)),
        }
    }

    /// Zeros of `shape`, float32 when `narrow`.
    pub fn zeros<Sh: ShapeBuilder<Dim = D>>(shape: Sh, narrow: bool) -> Self {
        match narrow {
            true => Values::F32(Array::zeros(shape)),
            false => Values::F64(Array::zeros(shape)),
        }
    }

    /// Set the values under index `i` of `axis` to `plane` (narrowed to float32 when held so).
    pub fn assign_at<E: Dimension>(&mut self, axis: Axis, i: usize, plane: &Array<f64, E>)
    where
        D: ndarray::RemoveAxis<Smaller = E>,
    {
        match self {
            Values::F32(a) => a.index_axis_mut(axis, i).zip_mut_with(plane, |d, &v| *d = v as f32),
            Values::F64(a) => a.index_axis_mut(axis, i).assign(plane),
        }
    }

    /// Bytes the values take.
    pub fn bytes(&self) -> usize {
        match self {
            Values::F32(a) => a.len() * 4,
            Values::F64(a) => a.len() * 8,
        }
    }
}

impl Values<Ix1> {
    /// One image's values, stored `C x H x W` (or `H x W x C` when `last`), laid out as
    /// `C x H x W`.
    pub fn into_chw(self, (c, h, w): (usize, usize, usize), last: bool) -> Result<Values<Ix3>, ShapeError> {
        fn cut<T: Clone>(a: Array1<T>, (c, h, w): (usize, usize, usize), last: bool) -> Result<Array3<T>, ShapeError> {
            Ok(match last {
                true => a.into_shape_with_order((h, w, c))?.permuted_axes([2, 0, 1]).as_standard_layout().into_owned(),
                false => a.into_shape_with_order((c, h, w))?,
            })
        }
        Ok(match self {
            Values::F32(a) => Values::F32(cut(a, (c, h, w), last)?),
            Values::F64(a) => Values::F64(cut(a, (c, h, w), last)?),
        })
    }

    /// One label map's values laid out as `H x W`.
    pub fn into_hw(self, hw: (usize, usize)) -> Result<Values<Ix2>, ShapeError> {
        Ok(match self {
            Values::F32(a) => Values::F32(a.into_shape_with_order(hw)?),
            Values::F64(a) => Values::F64(a.into_shape_with_order(hw)?),
        })
    }
}

impl<D: Dimension> From<Array<f64, D>> for Values<D> {
    fn from(values: Array<f64, D>) -> Self {
        Values::narrowed(values)
    }
}

/// Equal when the shapes and the values (as f64) are, however each side holds them.
impl<D: Dimension> PartialEq for Values<D> {
    fn eq(&self, other: &Self) -> bool {
        self.shape() == other.shape() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    #[test]
    fn float32_only_where_every_value_reads_back_the_same() {
        let bytes = Values::narrowed(array![[0.0, 255.0], [65535.0, -3.5]]);
        assert!(matches!(bytes, Values::F32(_)), "8/16-bit integers and halves are float32");
        assert_eq!(bytes.bytes(), 16);
        // 0.1 and 2^24 + 1 are not float32: the whole image stays float64.
        for odd in [0.1, 16_777_217.0] {
            let v = Values::narrowed(array![[1.0, odd]]);
            assert!(matches!(v, Values::F64(_)), "{odd}");
            assert_eq!(v.at((0, 1)), odd);
        }
        assert!(matches!(Values::narrowed(array![[f64::NAN, f64::INFINITY]]), Values::F32(_)));
        assert_eq!(Values::narrowed(array![[1.0, 2.0]]), Values::F64(array![[1.0, 2.0]]));
        assert_ne!(Values::narrowed(array![[1.0, 2.0]]), Values::F64(array![[1.0], [2.0]]));
    }
}
