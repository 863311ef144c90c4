//! The C ABI between the ldbench host and a plugin library; its full description follows.
#![doc = include_str!("../ABI.md")]

use std::ffi::{c_char, c_void};

/// The ABI version this SDK implements. The host refuses any other.
pub const ABI_VERSION: u32 = 2;

/// Name of the one exported symbol, a [`DescriptorFn`].
pub const DESCRIPTOR_SYMBOL: &str = "ldbench_plugin_descriptor";

/// `extern "C" fn ldbench_plugin_descriptor() -> *const PluginDescriptor`.
pub type DescriptorFn = unsafe extern "C" fn() -> *const PluginDescriptor;

/// [`PluginDescriptor::kind`] of an objective.
pub const KIND_OBJECTIVE: u32 = 1;
/// [`PluginDescriptor::kind`] of a preconditioner.
pub const KIND_PRECONDITIONER: u32 = 2;

/// The call succeeded.
pub const STATUS_OK: i32 = 0;
/// The plugin reported an error; the message is in the [`ErrorMessage`].
pub const STATUS_ERROR: i32 = 1;
/// The plugin panicked; the panic message is in the [`ErrorMessage`].
pub const STATUS_PANIC: i32 = 2;

/// Objective capability: a dense Hessian at θ* ([`ObjectiveVTable::hessian`]).
pub const CAP_HESSIAN: u64 = 1 << 0;
/// Objective capability: Hessian-vector products at θ* ([`ObjectiveVTable::hessian_vector`]).
pub const CAP_HESSIAN_VECTOR: u64 = 1 << 1;
/// Objective capability: the true rank of the Hessian ([`ObjectiveInfo::true_rank`]).
pub const CAP_TRUE_RANK: u64 = 1 << 2;
/// Objective capability: its own gradient-noise covariance ([`ObjectiveVTable::gradient_noise`]).
pub const CAP_GRADIENT_NOISE: u64 = 1 << 3;
/// Preconditioner capability: the online (adaptive) mode ([`PrecondVTable::observe`]).
pub const CAP_ONLINE: u64 = 1 << 4;
/// Objective capability: the eigenvalues of H at θ* without H itself
/// ([`ObjectiveVTable::hessian_eigenvalues`]), for problems too large for a dense Hessian.
pub const CAP_HESSIAN_SPECTRUM: u64 = 1 << 5;

/// [`PrecondVTable::structure`]: G = α I.
pub const STRUCTURE_SCALED_IDENTITY: u32 = 0;
/// [`PrecondVTable::structure`]: G diagonal.
pub const STRUCTURE_DIAGONAL: u32 = 1;
/// [`PrecondVTable::structure`]: G dense.
pub const STRUCTURE_DENSE: u32 = 2;

/// Bytes of an [`ErrorMessage`].
pub const ERROR_CAPACITY: usize = 2048;

/// A message buffer owned by the host; the plugin writes UTF-8 (truncated at a character
/// boundary) and its length.
#[repr(C)]
pub struct ErrorMessage {
    /// UTF-8 bytes.
    pub buf: [u8; ERROR_CAPACITY],
    /// Number of bytes written.
    pub len: usize,
}

impl ErrorMessage {
    /// An empty message.
    pub fn new() -> Self {
        ErrorMessage {
            buf: [0; ERROR_CAPACITY],
            len: 0,
        }
    }

    /// Writes `text`, truncated to the capacity at a character boundary.
    pub fn set(&mut self, text: &str) {
        let mut end = text.len().min(ERROR_CAPACITY);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.buf[..end].copy_from_slice(&text.as_bytes()[..end]);
        self.len = end;
    }

    /// The message written (lossy if a plugin wrote invalid UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf[..self.len.min(ERROR_CAPACITY)]).into_owned()
    }
}

impl Default for ErrorMessage {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`DescriptorFn`] returns. `abi_version` comes first and is read before anything else.
#[repr(C)]
pub struct PluginDescriptor {
    /// [`ABI_VERSION`] of the SDK the plugin was built with.
    pub abi_version: u32,
    /// [`KIND_OBJECTIVE`] or [`KIND_PRECONDITIONER`].
    pub kind: u32,
    /// NUL-terminated plugin name (its package name).
    pub name: *const c_char,
    /// NUL-terminated plugin version.
    pub version: *const c_char,
    /// `CAP_*` bits.
    pub capabilities: u64,
    /// `*const ObjectiveVTable` or `*const PrecondVTable`, by `kind`.
    pub vtable: *const c_void,
}

/// Facts about an objective instance.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ObjectiveInfo {
    /// n, the number of parameters.
    pub dim: usize,
    /// f* = f(θ*).
    pub f_star: f64,
    /// rank(H) at θ*, or −1 when unknown (without [`CAP_TRUE_RANK`]).
    pub true_rank: i64,
}

/// The inputs a preconditioner is built from: what an optimizer would know at θ*.
/// Matrices are n×n, column-major, owned by the host, valid during `create` only.
#[repr(C)]
pub struct PrecondProblem {
    /// n.
    pub dim: usize,
    /// H at θ* (null when the objective has no Hessian).
    pub hessian: *const f64,
    /// The gradient-noise covariance C at θ*.
    pub gradient_noise: *const f64,
}

/// Status-returning entry points of an objective. Blocks are column-major n×m.
#[repr(C)]
pub struct ObjectiveVTable {
    /// Parses the TOML parameters `params[..params_len]`, builds an instance for `seed`, and
    /// writes its opaque state to `*state`.
    pub create: unsafe extern "C" fn(
        params: *const u8,
        params_len: usize,
        seed: u64,
        state: *mut *mut c_void,
        err: *mut ErrorMessage,
    ) -> i32,
    /// Frees a state made by `create`.
    pub destroy: unsafe extern "C" fn(state: *mut c_void),
    /// Writes the [`ObjectiveInfo`].
    pub info: unsafe extern "C" fn(
        state: *const c_void,
        out: *mut ObjectiveInfo,
        err: *mut ErrorMessage,
    ) -> i32,
    /// Writes θ* (n values).
    pub theta_star: unsafe extern "C" fn(
        state: *const c_void,
        out: *mut f64,
        n: usize,
        err: *mut ErrorMessage,
    ) -> i32,
    /// Writes f(θ_j) into `value[j]` and ∇f(θ_j) into column j of `grad`, for the m columns of
    /// `theta`. Called concurrently from several threads on the same state.
    pub value_and_gradient: unsafe extern "C" fn(
        state: *const c_void,
        theta: *const f64,
        n: usize,
        m: usize,
        value: *mut f64,
        grad: *mut f64,
        err: *mut ErrorMessage,
    ) -> i32,
    /// Writes H at θ* (n×n). Present with [`CAP_HESSIAN`].
    pub hessian: Option<
        unsafe extern "C" fn(
            state: *const c_void,
            out: *mut f64,
            n: usize,
            err: *mut ErrorMessage,
        ) -> i32,
    >,
    /// Writes H v for the m columns of `v`. Present with [`CAP_HESSIAN_VECTOR`].
    pub hessian_vector: Option<
        unsafe extern "C" fn(
            state: *const c_void,
            v: *const f64,
            n: usize,
            m: usize,
            out: *mut f64,
            err: *mut ErrorMessage,
        ) -> i32,
    >,
    /// Writes the gradient-noise covariance at θ* (n×n). Present with [`CAP_GRADIENT_NOISE`].
    pub gradient_noise: Option<
        unsafe extern "C" fn(
            state: *const c_void,
            out: *mut f64,
            n: usize,
            err: *mut ErrorMessage,
        ) -> i32,
    >,
    /// Writes the n eigenvalues of H at θ* (any order). Present with [`CAP_HESSIAN_SPECTRUM`].
    /// (Added in ABI version 2.)
    pub hessian_eigenvalues: Option<
        unsafe extern "C" fn(
            state: *const c_void,
            out: *mut f64,
            n: usize,
            err: *mut ErrorMessage,
        ) -> i32,
    >,
}

/// Status-returning entry points of a preconditioner G (symmetric positive definite).
#[repr(C)]
pub struct PrecondVTable {
    /// Parses the parameters, builds G from `problem` and `seed`, writes the state to `*state`.
    pub create: unsafe extern "C" fn(
        params: *const u8,
        params_len: usize,
        seed: u64,
        problem: *const PrecondProblem,
        state: *mut *mut c_void,
        err: *mut ErrorMessage,
    ) -> i32,
    /// Frees a state made by `create`.
    pub destroy: unsafe extern "C" fn(state: *mut c_void),
    /// Writes a `STRUCTURE_*` value.
    pub structure:
        unsafe extern "C" fn(state: *const c_void, out: *mut u32, err: *mut ErrorMessage) -> i32,
    /// Writes G as a dense n×n matrix.
    pub matrix: unsafe extern "C" fn(
        state: *const c_void,
        out: *mut f64,
        n: usize,
        err: *mut ErrorMessage,
    ) -> i32,
    /// Writes G·block for an n×m block.
    pub apply: unsafe extern "C" fn(
        state: *const c_void,
        block: *const f64,
        n: usize,
        m: usize,
        out: *mut f64,
        err: *mut ErrorMessage,
    ) -> i32,
    /// Online mode: updates G from m stochastic gradients (an n×m block). Present with
    /// [`CAP_ONLINE`]; called from one thread at a time.
    pub observe: Option<
        unsafe extern "C" fn(
            state: *mut c_void,
            grads: *const f64,
            n: usize,
            m: usize,
            err: *mut ErrorMessage,
        ) -> i32,
    >,
}
