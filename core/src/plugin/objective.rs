//! An objective plugin instance: implements [`crate::sim::Objective`], and exposes the optional
//! Hessian, Hessian-vector products, true rank and gradient-noise covariance.
#![allow(unsafe_code)]

use std::ffi::c_void;

use faer::Mat;
use ldbench_sdk::abi::{
    CAP_GRADIENT_NOISE, CAP_HESSIAN, CAP_HESSIAN_SPECTRUM, CAP_HESSIAN_VECTOR, ObjectiveInfo,
    ObjectiveVTable,
};

use super::{Kind, Plugin, PluginError};
use crate::sim::{Objective, ObjectiveError};

/// An instance of an objective plugin, built from TOML parameters and a seed.
pub struct PluginObjective {
    plugin: Plugin,
    state: *mut c_void,
    info: ObjectiveInfo,
    theta_star: Vec<f64>,
}

// SAFETY: the ABI requires an objective's functions to be callable concurrently from several
// threads on one state (they take it as `*const`); the state is destroyed only in `drop`.
unsafe impl Send for PluginObjective {}
// SAFETY: as above.
unsafe impl Sync for PluginObjective {}

impl Drop for PluginObjective {
    fn drop(&mut self) {
        // SAFETY: `state` came from this vtable's `create` and is destroyed exactly once.
        unsafe { (self.vtable().destroy)(self.state) }
    }
}

impl PluginObjective {
    /// Creates an instance of `plugin` (which must be an objective) from TOML `params` and `seed`.
    pub fn new(plugin: &Plugin, params: &str, seed: u64) -> Result<Self, PluginError> {
        plugin.expect_kind(Kind::Objective)?;
        // SAFETY: a checked objective descriptor points at an `ObjectiveVTable`.
        let vtable = unsafe { &*(plugin.vtable as *const ObjectiveVTable) };
        let mut state = std::ptr::null_mut();
        plugin.call("create", |err| {
            // SAFETY: valid parameter bytes, a writable state slot and error buffer.
            unsafe { (vtable.create)(params.as_ptr(), params.len(), seed, &mut state, err) }
        })?;
        if state.is_null() {
            return Err(plugin.invalid("create reported success but returned no state".into()));
        }
        let mut objective = PluginObjective {
            plugin: plugin.clone(),
            state,
            info: ObjectiveInfo::default(),
            theta_star: Vec::new(),
        };
        let mut info = ObjectiveInfo::default();
        objective.plugin.call("info", |err| {
            // SAFETY: a live state and a writable `ObjectiveInfo`.
            unsafe { (vtable.info)(state, &mut info, err) }
        })?;
        if info.dim == 0 {
            return Err(objective.plugin.invalid("its dimension is 0".into()));
        }
        objective.plugin.check_finite("f_star", &[info.f_star])?;
        let mut theta_star = vec![0.0; info.dim];
        objective.plugin.call("theta_star", |err| {
            // SAFETY: a live state and an output of `dim` values.
            unsafe { (vtable.theta_star)(state, theta_star.as_mut_ptr(), info.dim, err) }
        })?;
        objective.plugin.check_finite("theta_star", &theta_star)?;
        objective.info = info;
        objective.theta_star = theta_star;
        Ok(objective)
    }

    fn vtable(&self) -> &ObjectiveVTable {
        // SAFETY: checked at creation; the library stays loaded while `plugin` lives.
        unsafe { &*(self.plugin.vtable as *const ObjectiveVTable) }
    }

    /// The plugin this instance came from.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// rank(H) at θ*, when the plugin knows it.
    pub fn true_rank(&self) -> Option<usize> {
        usize::try_from(self.info.true_rank).ok()
    }

    /// Whether the plugin declares capability `cap`.
    pub fn has(&self, cap: u64) -> bool {
        self.plugin.info.capabilities & cap != 0
    }

    /// H at θ*, checked finite and returned as a matrix, when the plugin has `CAP_HESSIAN`.
    pub fn hessian(&self) -> Result<Option<Mat<f64>>, PluginError> {
        self.square_output("hessian", CAP_HESSIAN, self.vtable().hessian)
    }

    /// The plugin's gradient-noise covariance at θ*, when it has `CAP_GRADIENT_NOISE`.
    pub fn gradient_noise(&self) -> Result<Option<Mat<f64>>, PluginError> {
        self.square_output(
            "gradient_noise",
            CAP_GRADIENT_NOISE,
            self.vtable().gradient_noise,
        )
    }

    /// The n eigenvalues of H at θ*, checked finite, when the plugin has `CAP_HESSIAN_SPECTRUM`.
    pub fn hessian_eigenvalues(&self) -> Result<Option<Vec<f64>>, PluginError> {
        let (Some(f), true) = (
            self.vtable().hessian_eigenvalues,
            self.has(CAP_HESSIAN_SPECTRUM),
        ) else {
            return Ok(None);
        };
        let n = self.info.dim;
        let mut out = vec![0.0; n];
        self.plugin.call("hessian_eigenvalues", |err| {
            // SAFETY: a live state and an output of n values.
            unsafe { f(self.state, out.as_mut_ptr(), n, err) }
        })?;
        self.plugin.check_finite("Hessian eigenvalues", &out)?;
        Ok(Some(out))
    }

    /// H v for the columns of the n×m block `v`, when the plugin has `CAP_HESSIAN_VECTOR`.
    pub fn hessian_vector(&self, v: &[f64]) -> Result<Option<Vec<f64>>, PluginError> {
        let (Some(f), true) = (self.vtable().hessian_vector, self.has(CAP_HESSIAN_VECTOR)) else {
            return Ok(None);
        };
        let n = self.info.dim;
        let m = self.plugin.columns(v.len(), n)?;
        let mut out = vec![0.0; v.len()];
        self.plugin.call("hessian_vector", |err| {
            // SAFETY: a live state, an n×m input and an n×m output.
            unsafe { f(self.state, v.as_ptr(), n, m, out.as_mut_ptr(), err) }
        })?;
        self.plugin.check_finite("Hessian-vector product", &out)?;
        Ok(Some(out))
    }

    /// Conformance: calls `value_and_gradient` with n + 1 rows, which the plugin must refuse
    /// with an error (not a panic, not success). Returns its message.
    pub(crate) fn rejects_wrong_dimension(&self) -> Result<String, String> {
        let n = self.info.dim + 1;
        let (theta, mut value, mut grad) = (vec![0.0; n], vec![0.0; 1], vec![0.0; n]);
        match self.call_value_and_gradient(&theta, n, &mut value, &mut grad) {
            Ok(()) => Err(format!(
                "accepted a block of {n} rows for dimension {}",
                self.info.dim
            )),
            Err(PluginError::Call {
                panicked: false,
                message,
                ..
            }) => Ok(message),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The raw `value_and_gradient` call on an n×m block, m = `value.len()`; the buffers must
    /// hold exactly n·m, m and n·m values.
    fn call_value_and_gradient(
        &self,
        theta: &[f64],
        n: usize,
        value: &mut [f64],
        grad: &mut [f64],
    ) -> Result<(), PluginError> {
        let m = value.len();
        assert!(
            theta.len() == n * m && grad.len() == n * m,
            "buffer sizes match the announced block"
        );
        let f = self.vtable().value_and_gradient;
        self.plugin.call("value_and_gradient", |err| {
            // SAFETY: a live state and buffers of exactly the announced sizes (asserted above).
            unsafe {
                f(
                    self.state,
                    theta.as_ptr(),
                    n,
                    m,
                    value.as_mut_ptr(),
                    grad.as_mut_ptr(),
                    err,
                )
            }
        })
    }

    fn square_output(
        &self,
        function: &'static str,
        cap: u64,
        entry: Option<
            unsafe extern "C" fn(
                *const c_void,
                *mut f64,
                usize,
                *mut ldbench_sdk::abi::ErrorMessage,
            ) -> i32,
        >,
    ) -> Result<Option<Mat<f64>>, PluginError> {
        let (Some(f), true) = (entry, self.has(cap)) else {
            return Ok(None);
        };
        let n = self.info.dim;
        let mut out = vec![0.0; n * n];
        self.plugin.call(function, |err| {
            // SAFETY: a live state and an n×n output.
            unsafe { f(self.state, out.as_mut_ptr(), n, err) }
        })?;
        self.plugin.check_finite(function, &out)?;
        Ok(Some(Mat::from_fn(n, n, |i, j| out[j * n + i])))
    }
}

impl Objective for PluginObjective {
    fn dim(&self) -> usize {
        self.info.dim
    }

    fn theta_star(&self) -> &[f64] {
        &self.theta_star
    }

    fn f_star(&self) -> f64 {
        self.info.f_star
    }

    fn value_and_gradient(
        &self,
        theta: &[f64],
        value: &mut [f64],
        grad: &mut [f64],
    ) -> Result<(), ObjectiveError> {
        let (n, m) = (self.info.dim, value.len());
        if theta.len() != n * m || grad.len() != n * m {
            return Err(ObjectiveError(format!(
                "blocks of {} and {} values for n = {n}, m = {m}",
                theta.len(),
                grad.len()
            )));
        }
        self.call_value_and_gradient(theta, n, value, grad)
            .map_err(|e| ObjectiveError(e.to_string()))?;
        // A NaN value is caught by the simulator with its step; a NaN gradient poisons the next
        // state, so it is caught here, where its origin is clear.
        self.plugin
            .check_finite("gradient", grad)
            .map_err(|e| ObjectiveError(e.to_string()))
    }
}
