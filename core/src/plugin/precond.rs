//! A preconditioner plugin instance: G from what an optimizer knows at θ* (H and the
//! gradient-noise covariance C), as a [`SymMatrix`] for the theory and the simulator, plus the
//! block `apply` and the online mode.
#![allow(unsafe_code)]

use std::ffi::c_void;

use faer::Mat;
use ldbench_sdk::abi::{
    CAP_ONLINE, PrecondProblem, PrecondVTable, STRUCTURE_DENSE, STRUCTURE_DIAGONAL,
    STRUCTURE_SCALED_IDENTITY,
};

use super::{Kind, Plugin, PluginError};
use crate::linalg::{SymMatrix, asymmetry};

/// Largest relative asymmetry accepted in a plugin's dense G.
const SYMMETRY_RTOL: f64 = 1e-10;

/// An instance of a preconditioner plugin.
pub struct PluginPrecond {
    plugin: Plugin,
    state: *mut c_void,
    dim: usize,
}

// SAFETY: the state is only used through `&self` (read-only entries, callable from any thread by
// the ABI) or `&mut self` (`observe`), and destroyed once in `drop`.
unsafe impl Send for PluginPrecond {}
// SAFETY: as above.
unsafe impl Sync for PluginPrecond {}

impl Drop for PluginPrecond {
    fn drop(&mut self) {
        // SAFETY: `state` came from this vtable's `create` and is destroyed exactly once.
        unsafe { (self.vtable().destroy)(self.state) }
    }
}

impl PluginPrecond {
    /// Builds G with `plugin` (which must be a preconditioner) from TOML `params`, `seed`, the
    /// Hessian at θ* (if the objective has one) and the gradient-noise covariance C.
    pub fn new(
        plugin: &Plugin,
        params: &str,
        seed: u64,
        hessian: Option<&Mat<f64>>,
        gradient_noise: &Mat<f64>,
    ) -> Result<Self, PluginError> {
        plugin.expect_kind(Kind::Preconditioner)?;
        let n = gradient_noise.nrows();
        let column_major =
            |m: &Mat<f64>| (0..n * n).map(|k| m[(k % n, k / n)]).collect::<Vec<f64>>();
        let h = hessian.map(column_major);
        let c = column_major(gradient_noise);
        let problem = PrecondProblem {
            dim: n,
            hessian: h.as_ref().map_or(std::ptr::null(), |h| h.as_ptr()),
            gradient_noise: c.as_ptr(),
        };
        // SAFETY: a checked preconditioner descriptor points at a `PrecondVTable`.
        let vtable = unsafe { &*(plugin.vtable as *const PrecondVTable) };
        let mut state = std::ptr::null_mut();
        plugin.call("create", |err| {
            // SAFETY: parameter bytes, a problem whose n×n matrices outlive the call, a state slot.
            unsafe {
                (vtable.create)(
                    params.as_ptr(),
                    params.len(),
                    seed,
                    &problem,
                    &mut state,
                    err,
                )
            }
        })?;
        if state.is_null() {
            return Err(plugin.invalid("create reported success but returned no state".into()));
        }
        Ok(PluginPrecond {
            plugin: plugin.clone(),
            state,
            dim: n,
        })
    }

    fn vtable(&self) -> &PrecondVTable {
        // SAFETY: checked at creation; the library stays loaded while `plugin` lives.
        unsafe { &*(self.plugin.vtable as *const PrecondVTable) }
    }

    /// The plugin this instance came from.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// G now, with its structure; checked finite and symmetric.
    pub fn matrix(&self) -> Result<SymMatrix, PluginError> {
        let n = self.dim;
        let mut structure = u32::MAX;
        self.plugin.call("structure", |err| {
            // SAFETY: a live state and a writable u32.
            unsafe { (self.vtable().structure)(self.state, &mut structure, err) }
        })?;
        let mut dense = vec![0.0; n * n];
        self.plugin.call("matrix", |err| {
            // SAFETY: a live state and an n×n output.
            unsafe { (self.vtable().matrix)(self.state, dense.as_mut_ptr(), n, err) }
        })?;
        self.plugin.check_finite("matrix", &dense)?;
        let m = Mat::from_fn(n, n, |i, j| dense[j * n + i]);
        let off_diagonal = (0..n).any(|j| (0..n).any(|i| i != j && m[(i, j)] != 0.0));
        let diagonal: Vec<f64> = (0..n).map(|i| m[(i, i)]).collect();
        match structure {
            STRUCTURE_SCALED_IDENTITY | STRUCTURE_DIAGONAL if off_diagonal => Err(self
                .plugin
                .invalid("G is declared diagonal but has off-diagonal entries".into())),
            STRUCTURE_SCALED_IDENTITY if diagonal.iter().any(|d| *d != diagonal[0]) => Err(self
                .plugin
                .invalid("G is declared a scaled identity but its diagonal varies".into())),
            STRUCTURE_SCALED_IDENTITY => Ok(SymMatrix::Scaled {
                dim: n,
                scale: diagonal[0],
            }),
            STRUCTURE_DIAGONAL => Ok(SymMatrix::Diagonal(diagonal)),
            STRUCTURE_DENSE => {
                let asym = asymmetry(m.as_ref());
                if asym > SYMMETRY_RTOL {
                    return Err(self.plugin.invalid(format!(
                        "G is not symmetric (relative asymmetry {asym:.2e})"
                    )));
                }
                let mut m = m;
                crate::linalg::symmetrize(&mut m);
                Ok(SymMatrix::Dense(m))
            }
            other => Err(self
                .plugin
                .invalid(format!("unknown structure value {other}"))),
        }
    }

    /// G · block for an n×m block.
    pub fn apply(&self, block: &[f64]) -> Result<Vec<f64>, PluginError> {
        let mut out = vec![0.0; block.len()];
        self.apply_into(block, &mut out)?;
        Ok(out)
    }

    /// G · block into `out` (the same length), so that a caller applying G repeatedly (a
    /// benchmark) reuses one buffer instead of allocating, and page-faulting, every call.
    pub fn apply_into(&self, block: &[f64], out: &mut [f64]) -> Result<(), PluginError> {
        let n = self.dim;
        let m = self.plugin.columns(block.len(), n)?;
        if out.len() != block.len() {
            return Err(self.plugin.invalid(format!(
                "apply output has {} values for a block of {}",
                out.len(),
                block.len()
            )));
        }
        self.plugin.call("apply", |err| {
            // SAFETY: a live state, an n×m input and an n×m output.
            unsafe {
                (self.vtable().apply)(self.state, block.as_ptr(), n, m, out.as_mut_ptr(), err)
            }
        })?;
        self.plugin.check_finite("apply output", out)
    }

    /// Whether the plugin has an online (adaptive) mode.
    pub fn is_online(&self) -> bool {
        self.plugin.info.capabilities & CAP_ONLINE != 0 && self.vtable().observe.is_some()
    }

    /// Online mode: feeds m stochastic gradients (an n×m block) to the preconditioner.
    pub fn observe(&mut self, grads: &[f64]) -> Result<(), PluginError> {
        let Some(observe) = self.vtable().observe.filter(|_| self.is_online()) else {
            return Err(self.plugin.invalid("it has no online mode".into()));
        };
        let n = self.dim;
        let m = self.plugin.columns(grads.len(), n)?;
        let state = self.state;
        self.plugin.call("observe", |err| {
            // SAFETY: a live state used by this thread only (`&mut self`), and an n×m input.
            unsafe { observe(state, grads.as_ptr(), n, m, err) }
        })
    }
}

impl crate::sim::Adaptive for PluginPrecond {
    fn observe(&mut self, grads: &[f64]) -> Result<Vec<f64>, String> {
        PluginPrecond::observe(self, grads).map_err(|e| e.to_string())?;
        match self.matrix().map_err(|e| e.to_string())? {
            SymMatrix::Dense(_) => Err("an online G must stay diagonal".to_owned()),
            diagonal => Ok(diagonal.diagonal().unwrap_or_default()),
        }
    }
}
