//! `.npy` data read image by image as it streams in, each image held as [`Values`] (float32
//! where exact): the whole array is never held beside the images cut from it, so a data set
//! takes the memory of its images once.

use std::io::{self, Read};

use anyhow::{anyhow, bail, Result};
use ndarray::{Array1, Ix1};
use npyz::{DType, Deserialize, NpyFile, Order, TypeChar};

use super::npy::decode;
use super::values::Values;

/// Hand a `.npy` stream to `each` one image at a time: the values under each index of the
/// first axis (all of them for a 0-d array), in C order, held as [`Values`] (float32 where
/// exact). A C-ordered file is read as it streams, so the whole array is never held beside
/// its images; a Fortran-ordered one is decoded whole first (its images are not contiguous).
/// `each` is called once per index of the first axis, also when an image has no values.
pub fn for_each_image<R: Read>(npy: NpyFile<R>, mut each: impl FnMut(Values<Ix1>) -> Result<()>) -> Result<()> {
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let (n, per) = match shape.split_first() {
        Some((&n, rest)) => (n, rest.iter().product::<usize>()),
        None => (1, 1),
    };
    if npy.order() == Order::Fortran || per == 0 {
        let all = decode(npy)?;
        let flat = all.as_standard_layout();
        let flat = flat.as_slice().unwrap_or(&[]);
        for i in 0..n {
            let image = flat.get(i * per..(i + 1) * per).unwrap_or(&[]);
            each(Values::narrowed(Array1::from(image.to_vec())))?;
        }
        return Ok(());
    }
    let DType::Plain(ty) = npy.dtype() else {
        bail!("unsupported dtype {} (structured arrays cannot be images or labels)", npy.dtype().descr());
    };
    let each: &mut dyn FnMut(Values<Ix1>) -> Result<()> = &mut each;
    let (n_images, ty_text) = (n, ty.to_string());
    let streamed = match (ty.type_char(), ty.size_field()) {
        (TypeChar::Float, 2) => images(npy, per, |v: half::f16| v.to_f64(), each),
        (TypeChar::Float, 4) => images(npy, per, |v: f32| v as f64, each),
        (TypeChar::Float, 8) => images(npy, per, |v: f64| v, each),
        (TypeChar::Int, 1) => images(npy, per, |v: i8| v as f64, each),
        (TypeChar::Int, 2) => images(npy, per, |v: i16| v as f64, each),
        (TypeChar::Int, 4) => images(npy, per, |v: i32| v as f64, each),
        (TypeChar::Int, 8) => images(npy, per, |v: i64| v as f64, each),
        (TypeChar::Uint, 1) => images(npy, per, |v: u8| v as f64, each),
        (TypeChar::Uint, 2) => images(npy, per, |v: u16| v as f64, each),
        (TypeChar::Uint, 4) => images(npy, per, |v: u32| v as f64, each),
        (TypeChar::Uint, 8) => images(npy, per, |v: u64| v as f64, each),
        (TypeChar::Bool, 1) => images(npy, per, |v: bool| f64::from(u8::from(v)), each),
        _ => bail!("unsupported dtype {ty}: use float16/32/64 images and integer or bool labels"),
    };
    let truncated = || anyhow!("array data is truncated: shape {shape:?} of {ty_text} needs more bytes");
    match streamed {
        Ok(done) if done == n_images => Ok(()),
        Ok(_) => Err(truncated()),
        Err(Stream::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Err(truncated()),
        Err(Stream::Io(e)) => Err(anyhow!("array data of {ty_text}: {e}")),
        Err(Stream::Each(e)) => Err(e),
    }
}

/// Why streaming stopped: the file, or what was done with an image.
enum Stream {
    Io(io::Error),
    Each(anyhow::Error),
}

/// Read `per` values of `T` at a time (widened to f64, held as float32 while every one is
/// exact) and hand each image to `each`; returns how many images were whole.
fn images<T: Deserialize, R: Read>(
    npy: NpyFile<R>,
    per: usize,
    widen: impl Fn(T) -> f64,
    each: &mut dyn FnMut(Values<Ix1>) -> Result<()>,
) -> std::result::Result<usize, Stream> {
    let reader = npy.data::<T>().map_err(|e| Stream::Io(io::Error::new(io::ErrorKind::InvalidData, e)))?;
    let mut image = Image::with_capacity(per);
    let mut done = 0;
    for v in reader {
        image.push(widen(v.map_err(Stream::Io)?));
        if image.len() == per {
            each(std::mem::replace(&mut image, Image::with_capacity(per)).into_values()).map_err(Stream::Each)?;
            done += 1;
        }
    }
    Ok(done)
}

/// One image's values as they stream in: float32 until a value is not exactly one.
enum Image {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Image {
    fn with_capacity(n: usize) -> Self {
        Image::F32(Vec::with_capacity(n))
    }

    fn len(&self) -> usize {
        match self {
            Image::F32(v) => v.len(),
            Image::F64(v) => v.len(),
        }
    }

    fn push(&mut self, v: f64) {
        match self {
            Image::F32(values) if f64::from(v as f32) == v || v.is_nan() => values.push(v as f32),
            Image::F32(values) => {
                let mut wide: Vec<f64> = Vec::with_capacity(values.capacity());
                wide.extend(values.iter().map(|&x| f64::from(x)));
                wide.push(v);
                *self = Image::F64(wide);
            }
            Image::F64(values) => values.push(v),
        }
    }

    fn into_values(self) -> Values<Ix1> {
        match self {
            Image::F32(v) => Values::F32(Array1::from(v)),
            Image::F64(v) => Values::F64(Array1::from(v)),
        }
    }
}
