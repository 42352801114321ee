//! The operator kernels: read arguments off the boxed stack, call the core, allocate outputs
//! with torch's allocator and let the core fill them in place.

use roboframes_core::{registry, DType, FrameFormat, PixelType};

use crate::abi::{
    bool_arg, dtype_arg, int_arg, IntList, KResult, KernelError, Str, Tensor, TensorList,
};
use crate::api::{DTypes, TorchApi};

/// One operator: its schema, argument and result counts, and kernel.
pub struct OpDef {
    pub name: &'static str,
    pub schema: &'static str,
    pub args: usize,
    pub outs: usize,
    pub kernel: fn(&TorchApi, &mut [u64]) -> KResult<()>,
}

/// Every operator, in registration order. Output shapes follow from the arguments (and from
/// the metadata of the dataset a handle names), so fake kernels are exact.
pub const OPS: &[OpDef] = &[
    OpDef {
        name: "decode_frames",
        schema: "decode_frames(int dataset, str camera, Tensor episode_index, Tensor timestamp, \
                 ScalarType frame_dtype, bool channels_last) -> Tensor",
        args: 6,
        outs: 1,
        kernel: decode_frames,
    },
    OpDef {
        name: "gather",
        schema: "gather(int dataset, str key, Tensor indices, int[] offsets) -> (Tensor, Tensor)",
        args: 4,
        outs: 2,
        kernel: gather,
    },
    OpDef {
        name: "get_batch",
        schema: "get_batch(int dataset, Tensor indices, ScalarType frame_dtype, \
                 bool channels_last) -> Tensor[]",
        args: 4,
        outs: 1,
        kernel: get_batch,
    },
];

fn slot(stack: &[u64], i: usize) -> KResult<u64> {
    stack
        .get(i)
        .copied()
        .ok_or_else(|| KernelError::Contract(format!("operator stack has no slot {i}")))
}

fn set(stack: &mut [u64], i: usize, v: u64) -> KResult<()> {
    match stack.get_mut(i) {
        Some(s) => {
            *s = v;
            Ok(())
        }
        None => Err(KernelError::Contract(format!(
            "operator stack has no slot {i}"
        ))),
    }
}

/// The frame pixel type of a torch dtype code (the inverse of [`torch_dtype`] on frame types).
fn pixel_type(d: &DTypes, code: i32) -> KResult<PixelType> {
    DType::ALL
        .into_iter()
        .filter(|t| torch_dtype(d, *t).ok() == Some(code))
        .find_map(PixelType::of_dtype)
        .ok_or_else(|| {
            KernelError::Arg(
                "frame dtype must be torch.uint8, torch.float32, torch.float16 or torch.bfloat16"
                    .into(),
            )
        })
}

fn torch_dtype(d: &DTypes, t: DType) -> KResult<i32> {
    Ok(match t {
        DType::Bool => d.bool_,
        DType::U8 => d.uint8,
        DType::U16 => d.uint16,
        DType::I32 => d.int32,
        DType::I64 => d.int64,
        DType::F16 => d.float16,
        DType::BF16 => d.bfloat16,
        DType::F32 => d.float32,
        DType::F64 => d.float64,
        other => {
            return Err(KernelError::Arg(format!(
                "no torch output type for {}",
                other.name()
            )))
        }
    })
}

fn shape_with(lead: &[usize], rest: &[usize]) -> Vec<usize> {
    lead.iter().chain(rest).copied().collect()
}

/// `decode_frames(int dataset, str camera, Tensor episode_index, Tensor timestamp,
/// ScalarType frame_dtype, bool channels_last) -> Tensor`
fn decode_frames(api: &TorchApi, stack: &mut [u64]) -> KResult<()> {
    // SAFETY: slots 1-3 hold this schema's owned str and Tensor arguments, taken once here.
    let (camera, episodes, timestamps) = unsafe {
        (
            Str::take(api, slot(stack, 1)?),
            Tensor::take(api, slot(stack, 2)?),
            Tensor::take(api, slot(stack, 3)?),
        )
    };
    let ds = registry::get(int_arg(slot(stack, 0)?))?;
    let fmt = FrameFormat {
        pixel: pixel_type(&api.dtypes, dtype_arg(slot(stack, 4)?))?,
        channels_last: bool_arg(slot(stack, 5)?),
    };
    let camera = camera.text()?;
    let eps = episodes.to_i64s("episode_index")?;
    let ts = timestamps.to_f64s("timestamp")?;
    // (a depth map's frames hold what the dataset reads depth as, whatever `frame_dtype` says)
    let (frame_shape, dtype) = ds.frame_layout(&camera, fmt)?;
    let shape = shape_with(&[eps.len()], &frame_shape);
    let mut out = Tensor::empty(api, &shape, torch_dtype(&api.dtypes, dtype)?)?;
    let len = eps.len() * frame_shape.iter().product::<usize>() * dtype.size();
    // SAFETY: `out` is a fresh contiguous tensor of exactly `len` bytes, used only here.
    let bytes = unsafe { out.bytes_mut(len) }?;
    ds.decode_frames(&camera, &eps, &ts, fmt, bytes)?;
    set(stack, 0, out.into_raw())
}

/// `gather(int dataset, str key, Tensor indices, int[] offsets) -> (Tensor, Tensor)`
fn gather(api: &TorchApi, stack: &mut [u64]) -> KResult<()> {
    // SAFETY: slots 1-3 hold this schema's owned str, Tensor and int[] arguments.
    let (key, index, offsets) = unsafe {
        (
            Str::take(api, slot(stack, 1)?),
            Tensor::take(api, slot(stack, 2)?),
            IntList::take(api, slot(stack, 3)?),
        )
    };
    let ds = registry::get(int_arg(slot(stack, 0)?))?;
    let key = key.text()?;
    let idx = index.to_i64s("indices")?;
    let offs = offsets.values()?;
    let (row, dtype) = ds.numeric_row(&key)?;
    let lead = [idx.len(), offs.len()];
    let mut values = Tensor::empty(
        api,
        &shape_with(&lead, &row),
        torch_dtype(&api.dtypes, dtype)?,
    )?;
    let mut pads = Tensor::empty(api, &lead, api.dtypes.bool_)?;
    let steps = idx.len() * offs.len();
    let vlen = steps * row.iter().product::<usize>() * dtype.size();
    // SAFETY: both are fresh contiguous tensors of exactly these byte sizes, used only here.
    let (vb, pb) = unsafe { (values.bytes_mut(vlen)?, pads.bytes_mut(steps)?) };
    ds.gather(&key, &idx, &offs, vb, pb)?;
    set(stack, 0, values.into_raw())?;
    set(stack, 1, pads.into_raw())
}

/// `get_batch(int dataset, Tensor indices, ScalarType frame_dtype, bool channels_last)
/// -> Tensor[]`: every array entry of the items (strings and language values are left out),
/// stacked.
fn get_batch(api: &TorchApi, stack: &mut [u64]) -> KResult<()> {
    // SAFETY: slot 1 holds this schema's owned Tensor argument.
    let index = unsafe { Tensor::take(api, slot(stack, 1)?) };
    let ds = registry::get(int_arg(slot(stack, 0)?))?;
    let fmt = FrameFormat {
        pixel: pixel_type(&api.dtypes, dtype_arg(slot(stack, 2)?))?,
        channels_last: bool_arg(slot(stack, 3)?),
    };
    let idx = index.to_i64s("indices")?;
    let b = idx.len();
    let specs = ds.outputs_for(fmt);
    let mut tensors = Vec::new();
    for s in specs.iter().filter(|s| s.is_array()) {
        let t = Tensor::empty(
            api,
            &shape_with(&[b], &s.shape),
            torch_dtype(&api.dtypes, s.dtype)?,
        )?;
        tensors.push((t, b * s.item_bytes()));
    }
    {
        let mut arrays = Vec::with_capacity(tensors.len());
        for (t, len) in tensors.iter_mut() {
            // SAFETY: each tensor is fresh, contiguous, `len` bytes, and lent to one buffer.
            arrays.push(unsafe { t.bytes_mut(*len) }?);
        }
        ds.fill_arrays(&idx, fmt, arrays)?;
    }
    let mut list = TensorList::new(api, tensors.len())?;
    for (t, _) in tensors {
        list.push(t)?;
    }
    set(stack, 0, list.into_raw())
}
