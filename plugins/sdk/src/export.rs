//! The `extern "C"` shims behind [`crate::export_objective!`] and
//! [`crate::export_preconditioner!`]: they turn the C ABI's raw pointers into slices, call the
//! safe traits, and turn errors and panics into a status with a message. Nothing unwinds out.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::abi::*;
use crate::{Matrix, Objective, Preconditioner, Problem, Result};

/// A [`PluginDescriptor`] that can live in a `static`.
#[repr(transparent)]
pub struct Descriptor(PluginDescriptor);

// SAFETY: the descriptor points only at immutable statics (NUL-terminated string literals and a
// vtable of function pointers), so sharing it between threads is sound.
unsafe impl Sync for Descriptor {}

impl Descriptor {
    /// A descriptor for the current ABI version; `name` and `version` end with a NUL byte.
    pub const fn new(
        kind: u32,
        name: &'static str,
        version: &'static str,
        capabilities: u64,
        vtable: *const c_void,
    ) -> Self {
        Descriptor(PluginDescriptor {
            abi_version: ABI_VERSION,
            kind,
            name: name.as_ptr() as *const c_char,
            version: version.as_ptr() as *const c_char,
            capabilities,
            vtable,
        })
    }

    /// The pointer the exported symbol returns.
    pub const fn as_ptr(&'static self) -> *const PluginDescriptor {
        &self.0
    }
}

/// Runs `body`, turning an error or a panic into a status and a message in `err`.
fn guard(err: *mut ErrorMessage, body: impl FnOnce() -> Result<()>) -> i32 {
    let (status, message) = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return STATUS_OK,
        Ok(Err(e)) => (STATUS_ERROR, e.to_string()),
        Err(payload) => {
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            (STATUS_PANIC, format!("panicked: {text}"))
        }
    };
    // SAFETY: the host passes either null or a valid, exclusive ErrorMessage for this call.
    if let Some(err) = unsafe { err.as_mut() } {
        err.set(&message);
    }
    status
}

/// A slice from the host's pointer and length (empty for a null pointer with length 0).
///
/// # Safety
/// `ptr` must point at `len` initialised values that stay valid and unaliased by writes for `'a`.
unsafe fn input<'a, T>(ptr: *const T, len: usize) -> Result<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err("the host passed a null input buffer".into());
    }
    // SAFETY: non-null, and the caller guarantees `len` valid values.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A mutable slice over the host's output buffer.
///
/// # Safety
/// `ptr` must point at `len` values writable and not otherwise accessed for `'a`.
unsafe fn output<'a>(ptr: *mut f64, len: usize) -> Result<&'a mut [f64]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err("the host passed a null output buffer".into());
    }
    // SAFETY: non-null, and the caller guarantees `len` writable values.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

fn params<P: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<P> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("parameters are not UTF-8: {e}"))?;
    toml::from_str(text).map_err(|e| format!("invalid parameters: {}", e.message()).into())
}

fn checked_len(n: usize, m: usize) -> Result<usize> {
    n.checked_mul(m)
        .ok_or_else(|| format!("block size {n}×{m} overflows").into())
}

/// # Safety
/// `state` must come from `create` of the same plugin and type.
unsafe fn object<'a, T>(state: *const c_void) -> Result<&'a T> {
    // SAFETY: `state` is a Box<T> made by `create` and not yet destroyed.
    unsafe { (state as *const T).as_ref() }.ok_or_else(|| "null plugin state".into())
}

unsafe extern "C" fn objective_create<T: Objective>(
    p: *const u8,
    len: usize,
    seed: u64,
    state: *mut *mut c_void,
    err: *mut ErrorMessage,
) -> i32 {
    guard(err, || {
        // SAFETY: the host passes its parameter bytes and a writable state slot.
        let params = params::<T::Params>(unsafe { input(p, len) }?)?;
        let object = T::new(params, seed)?;
        let slot = unsafe { state.as_mut() }.ok_or("the host passed a null state slot")?;
        *slot = Box::into_raw(Box::new(object)) as *mut c_void;
        Ok(())
    })
}

unsafe extern "C" fn destroy<T>(state: *mut c_void) {
    if !state.is_null() {
        // SAFETY: `state` is the Box<T> made by `create`; the host destroys it once.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            drop(unsafe { Box::from_raw(state as *mut T) })
        }));
    }
}

unsafe extern "C" fn objective_info<T: Objective>(
    state: *const c_void,
    out: *mut ObjectiveInfo,
    err: *mut ErrorMessage,
) -> i32 {
    guard(err, || {
        // SAFETY: a live state and a writable ObjectiveInfo from the host.
        let o = unsafe { object::<T>(state) }?;
        let info = ObjectiveInfo {
            dim: o.dim(),
            f_star: o.f_star(),
            true_rank: o.true_rank().map_or(-1, |r| r as i64),
        };
        *unsafe { out.as_mut() }.ok_or("the host passed a null output")? = info;
        Ok(())
    })
}

unsafe extern "C" fn objective_theta_star<T: Objective>(
    state: *const c_void,
    out: *mut f64,
    n: usize,
    err: *mut ErrorMessage,
) -> i32 {
    guard(err, || {
        // SAFETY: a live state and an output of n values from the host.
        let o = unsafe { object::<T>(state) }?;
        let theta = o.theta_star();
        if theta.len() != n {
            return Err(format!(
                "theta_star has {} values but the dimension is {n}",
                theta.len()
            )
            .into());
        }
        unsafe { output(out, n) }?.copy_from_slice(&theta);
        Ok(())
    })
}

unsafe extern "C" fn objective_value_and_gradient<T: Objective>(
    state: *const c_void,
    theta: *const f64,
    n: usize,
    m: usize,
    value: *mut f64,
    grad: *mut f64,
    err: *mut ErrorMessage,
) -> i32 {
    guard(err, || {
        let len = checked_len(n, m)?;
        // SAFETY: a live state; an n×m input, m values and an n×m output from the host.
        let o = unsafe { object::<T>(state) }?;
        if n != o.dim() {
            return Err(format!("the block has {n} rows but the dimension is {}", o.dim()).into());
        }
        o.value_and_gradient(
            unsafe { input(theta, len) }?,
            unsafe { output(value, m) }?,
            unsafe { output(grad, len) }?,
        )
    })
}

/// The body of an entry that fills `len` host-owned values from the state with `fill` (one of
/// the objective's optional outputs).
///
/// # Safety
/// `state` must come from `create` for `T` and `out` must hold `len` values (when `len` is Ok).
unsafe fn fill_output<T: Objective>(
    state: *const c_void,
    out: *mut f64,
    len: Result<usize>,
    err: *mut ErrorMessage,
    fill: fn(&T, &mut [f64]) -> Result<()>,
) -> i32 {
    guard(err, || {
        // SAFETY: the caller's contract.
        let o = unsafe { object::<T>(state) }?;
        fill(o, unsafe { output(out, len?) }?)
    })
}

unsafe extern "C" fn objective_hessian<T: Objective>(
    state: *const c_void,
    out: *mut f64,
    n: usize,
    err: *mut ErrorMessage,
) -> i32 {
    // SAFETY: a live state and an n×n output from the host.
    unsafe { fill_output(state, out, checked_len(n, n), err, T::hessian) }
}

unsafe extern "C" fn objective_gradient_noise<T: Objective>(
    state: *const c_void,
    out: *mut f64,
    n: usize,
    err: *mut ErrorMessage,
) -> i32 {
    // SAFETY: a live state and an n×n output from the host.
    unsafe { fill_output(state, out, checked_len(n, n), err, T::gradient_noise) }
}

unsafe extern "C" fn objective_hessian_eigenvalues<T: Objective>(
    state: *const c_void,
    out: *mut f64,
    n: usize,
    err: *mut ErrorMessage,
) -> i32 {
    // SAFETY: a live state and an output of n values from the host.
    unsafe { fill_output(state, out, Ok(n), err, T::hessian_eigenvalues) }
}

unsafe extern "C" fn objective_hessian_vector<T: Objective>(
    state: *const c_void,
    v: *const f64,
    n: usize,
    m: usize,
    out: *mut f64,
    err: *mut ErrorMessage,
) -> i32 {
    guard(err, || {
        let len = checked_len(n, m)?;
        // SAFETY: a live state, an n×m input and an n×m output from the host.
        let o = unsafe { object::<T>(state) }?;
        o.hessian_vector(unsafe { input(v, len) }?, unsafe { output(out, len) }?)
    })
}

/// The vtable of objective `T`; optional entries follow `T::CAPABILITIES`.
pub const fn objective_vtable<T: Objective>() -> ObjectiveVTable {
    let caps = T::CAPABILITIES;
    ObjectiveVTable {
        create: objective_create::<T>,
        destroy: destroy::<T>,
        info: objective_info::<T>,
        theta_star: objective_theta_star::<T>,
        value_and_gradient: objective_value_and_gradient::<T>,
        hessian: if caps & CAP_HESSIAN != 0 {
            Some(objective_hessian::<T>)
        } else {
            None
        },
        hessian_vector: if caps & CAP_HESSIAN_VECTOR != 0 {
            Some(objective_hessian_vector::<T>)
        } else {
            None
        },
        gradient_noise: if caps & CAP_GRADIENT_NOISE != 0 {
            Some(objective_gradient_noise::<T>)
        } else {
            None
        },
        hessian_eigenvalues: if caps & CAP_HESSIAN_SPECTRUM != 0 {
            Some(objective_hessian_eigenvalues::<T>)
        } else {
            None
        },
    }
}

unsafe extern "C" fn precond_create<T: Preconditioner>(
    p: *const u8,
    len: usize,
    seed: u64,
    problem: *const PrecondProblem,
    state: *mut *mut c_void,
    err: *mut ErrorMessage,
) -> i32 {
    guard(err, || {
        // SAFETY: the host passes its parameter bytes, a problem whose matrices are n×n and valid
        // during this call, and a writable state slot.
        let params = params::<T::Params>(unsafe { input(p, len) }?)?;
        let raw = unsafe { problem.as_ref() }.ok_or("the host passed no problem")?;
        let nn = checked_len(raw.dim, raw.dim)?;
        let hessian = if raw.hessian.is_null() {
            None
        } else {
            Some(unsafe { input(raw.hessian, nn) }?)
        };
        let problem = Problem {
            dim: raw.dim,
            hessian,
            gradient_noise: unsafe { input(raw.gradient_noise, nn) }?,
        };
        let object = T::new(params, &problem, seed)?;
        if object.matrix().dim() != raw.dim {
            return Err(format!(
                "G has dimension {} but the problem has {}",
                object.matrix().dim(),
                raw.dim
            )
            .into());
        }
        let slot = unsafe { state.as_mut() }.ok_or("the host passed a null state slot")?;
        *slot = Box::into_raw(Box::new(object)) as *mut c_void;
        Ok(())
    })
}

unsafe extern "C" fn precond_structure<T: Preconditioner>(
    state: *const c_void,
    out: *mut u32,
    err: *mut ErrorMessage,
) -> i32 {
    guard(err, || {
        // SAFETY: a live state and a writable u32 from the host.
        let structure = match unsafe { object::<T>(state) }?.matrix() {
            Matrix::ScaledIdentity { .. } => STRUCTURE_SCALED_IDENTITY,
            Matrix::Diagonal(_) => STRUCTURE_DIAGONAL,
            Matrix::Dense { .. } => STRUCTURE_DENSE,
        };
        *unsafe { out.as_mut() }.ok_or("the host passed a null output")? = structure;
        Ok(())
    })
}

unsafe extern "C" fn precond_matrix<T: Preconditioner>(
    state: *const c_void,
    out: *mut f64,
    n: usize,
    err: *mut ErrorMessage,
) -> i32 {
    guard(err, || {
        // SAFETY: a live state and an n×n output from the host.
        let g = unsafe { object::<T>(state) }?.matrix();
        if g.dim() != n {
            return Err(format!("G has dimension {} but the host asked for {n}", g.dim()).into());
        }
        let out = unsafe { output(out, checked_len(n, n)?) }?;
        for j in 0..n {
            for i in 0..n {
                out[j * n + i] = g.entry(i, j);
            }
        }
        Ok(())
    })
}

unsafe extern "C" fn precond_apply<T: Preconditioner>(
    state: *const c_void,
    block: *const f64,
    n: usize,
    m: usize,
    out: *mut f64,
    err: *mut ErrorMessage,
) -> i32 {
    guard(err, || {
        let len = checked_len(n, m)?;
        // SAFETY: a live state, an n×m input and an n×m output from the host.
        let g = unsafe { object::<T>(state) }?.matrix();
        if g.dim() != n {
            return Err(format!("G has dimension {} but the block has {n} rows", g.dim()).into());
        }
        g.apply(unsafe { input(block, len) }?, unsafe { output(out, len) }?);
        Ok(())
    })
}

unsafe extern "C" fn precond_observe<T: Preconditioner>(
    state: *mut c_void,
    grads: *const f64,
    n: usize,
    m: usize,
    err: *mut ErrorMessage,
) -> i32 {
    guard(err, || {
        // SAFETY: a live state the host uses from one thread during this call, and an n×m input.
        let g = unsafe { (state as *mut T).as_mut() }.ok_or("null plugin state")?;
        if g.matrix().dim() != n {
            return Err(format!(
                "G has dimension {} but the block has {n} rows",
                g.matrix().dim()
            )
            .into());
        }
        g.observe(unsafe { input(grads, checked_len(n, m)?) }?)
    })
}

/// The vtable of preconditioner `T`; `observe` follows `T::CAPABILITIES`.
pub const fn precond_vtable<T: Preconditioner>() -> PrecondVTable {
    PrecondVTable {
        create: precond_create::<T>,
        destroy: destroy::<T>,
        structure: precond_structure::<T>,
        matrix: precond_matrix::<T>,
        apply: precond_apply::<T>,
        observe: if T::CAPABILITIES & CAP_ONLINE != 0 {
            Some(precond_observe::<T>)
        } else {
            None
        },
    }
}

/// Exports objective `$ty` (an [`Objective`](crate::Objective)) as this library's plugin, named
/// after its package.
#[macro_export]
macro_rules! export_objective {
    ($ty:ty) => {
        /// The ldbench plugin descriptor of this library.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn ldbench_plugin_descriptor() -> *const $crate::abi::PluginDescriptor {
            static VTABLE: $crate::abi::ObjectiveVTable = $crate::export::objective_vtable::<$ty>();
            static DESCRIPTOR: $crate::export::Descriptor = $crate::export::Descriptor::new(
                $crate::abi::KIND_OBJECTIVE,
                concat!(env!("CARGO_PKG_NAME"), "\0"),
                concat!(env!("CARGO_PKG_VERSION"), "\0"),
                <$ty as $crate::Objective>::CAPABILITIES,
                &VTABLE as *const $crate::abi::ObjectiveVTable as *const ::std::ffi::c_void,
            );
            DESCRIPTOR.as_ptr()
        }
    };
}

/// Exports preconditioner `$ty` (a [`Preconditioner`](crate::Preconditioner)) as this library's
/// plugin, named after its package.
#[macro_export]
macro_rules! export_preconditioner {
    ($ty:ty) => {
        /// The ldbench plugin descriptor of this library.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn ldbench_plugin_descriptor() -> *const $crate::abi::PluginDescriptor {
            static VTABLE: $crate::abi::PrecondVTable = $crate::export::precond_vtable::<$ty>();
            static DESCRIPTOR: $crate::export::Descriptor = $crate::export::Descriptor::new(
                $crate::abi::KIND_PRECONDITIONER,
                concat!(env!("CARGO_PKG_NAME"), "\0"),
                concat!(env!("CARGO_PKG_VERSION"), "\0"),
                <$ty as $crate::Preconditioner>::CAPABILITIES,
                &VTABLE as *const $crate::abi::PrecondVTable as *const ::std::ffi::c_void,
            );
            DESCRIPTOR.as_ptr()
        }
    };
}
