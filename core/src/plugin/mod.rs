//! The plugin host: finds plugin libraries by name in the plugin directory, checks their
//! descriptor (ABI version first), and wraps their C vtables in safe types —
//! [`PluginObjective`] implements [`crate::sim::Objective`], so plugins and in-process objectives
//! share the simulator; [`PluginPrecond`] yields G as a [`crate::linalg::SymMatrix`].
//!
//! The ABI is `ldbench_sdk::abi` (documented in `plugins/sdk/ABI.md`). Libraries are never
//! unloaded while anything made from them is alive: every instance holds an `Arc` of its library.
//! A plugin is native code running with the user's rights; the host only loads files from the
//! plugin directory, by name (README.md, "Trust model").
#![allow(unsafe_code)]

pub mod conformance;
mod objective;
mod precond;

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ldbench_sdk::abi::{
    ABI_VERSION, DESCRIPTOR_SYMBOL, DescriptorFn, ErrorMessage, KIND_OBJECTIVE,
    KIND_PRECONDITIONER, PluginDescriptor, STATUS_OK, STATUS_PANIC,
};
pub use objective::PluginObjective;
pub use precond::PluginPrecond;
use serde::Serialize;

/// The environment variable that overrides the default plugin directory.
pub const PLUGIN_DIR_ENV: &str = "LDBENCH_PLUGIN_DIR";

/// Objective or preconditioner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An objective f with θ*, gradients and optional Hessian information.
    Objective,
    /// A preconditioner G.
    Preconditioner,
}

impl Kind {
    /// "an objective" or "a preconditioner".
    pub fn with_article(self) -> &'static str {
        match self {
            Kind::Objective => "an objective",
            Kind::Preconditioner => "a preconditioner",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Objective => "objective",
            Kind::Preconditioner => "preconditioner",
        })
    }
}

/// Why a plugin could not be used. Every message names the plugin or its file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The name could reach outside the plugin directory.
    #[error(
        "plugin name '{0}' is not allowed: names are package names like 'precond-sgd', without '/', '\\' or '..'"
    )]
    InvalidName(String),
    /// No library of that name in the plugin directory.
    #[error("no plugin named '{name}' in {dir}; available: {}. Build plugins with `cargo build --release --workspace`, or point --plugin-dir / {PLUGIN_DIR_ENV} elsewhere", if available.is_empty() { "none".to_owned() } else { available.join(", ") })]
    NotFound {
        /// The name asked for.
        name: String,
        /// Where it was looked for.
        dir: PathBuf,
        /// The plugins that are there.
        available: Vec<String>,
    },
    /// The dynamic loader refused the file.
    #[error("{file}: cannot load the library: {reason}")]
    Load {
        /// The library file.
        file: PathBuf,
        /// The loader's message, with its causes.
        reason: String,
    },
    /// The library has no descriptor symbol.
    #[error(
        "{file}: not an ldbench plugin (it exports no `{DESCRIPTOR_SYMBOL}` symbol); plugins are built with ldbench-sdk's export macros"
    )]
    NotAPlugin {
        /// The library file.
        file: PathBuf,
    },
    /// Built against another ABI version.
    #[error(
        "{file}: plugin ABI version {found}, but this ldbench speaks version {expected}; rebuild the plugin against the ldbench-sdk of this ldbench"
    )]
    AbiMismatch {
        /// The library file.
        file: PathBuf,
        /// [`ABI_VERSION`].
        expected: u32,
        /// What the plugin declares.
        found: u32,
    },
    /// The descriptor is inconsistent.
    #[error("{file}: malformed plugin descriptor: {problem}")]
    Malformed {
        /// The library file.
        file: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// An objective asked for where a preconditioner was needed, or the reverse.
    #[error("plugin '{name}' is {}, but {} is needed here", found.with_article(), expected.with_article())]
    WrongKind {
        /// The plugin.
        name: String,
        /// The kind needed.
        expected: Kind,
        /// Its kind.
        found: Kind,
    },
    /// A plugin call returned an error or panicked.
    #[error("plugin '{plugin}' {} in {function}: {message}", if *panicked { "panicked" } else { "failed" })]
    Call {
        /// The plugin.
        plugin: String,
        /// The vtable entry.
        function: &'static str,
        /// Its message.
        message: String,
        /// Whether it was a panic.
        panicked: bool,
    },
    /// A plugin returned NaN or infinity.
    #[error(
        "plugin '{plugin}' returned a non-finite value ({value}) at index {index} of its {what}"
    )]
    NonFinite {
        /// The plugin.
        plugin: String,
        /// Which output.
        what: &'static str,
        /// The flat index.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A plugin's output is inconsistent (a dimension, a structure value).
    #[error("plugin '{plugin}': {problem}")]
    Invalid {
        /// The plugin.
        plugin: String,
        /// What is wrong.
        problem: String,
    },
}

/// What a plugin's descriptor says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginInfo {
    /// Its name (package name).
    pub name: String,
    /// Objective or preconditioner.
    pub kind: Kind,
    /// Its version.
    pub version: String,
    /// `ldbench_sdk::abi::CAP_*` bits.
    pub capabilities: u64,
    /// The library file.
    pub file: PathBuf,
}

impl PluginInfo {
    /// Names of the capabilities set.
    pub fn capability_names(&self) -> Vec<&'static str> {
        use ldbench_sdk::abi::*;
        [
            (CAP_HESSIAN, "hessian"),
            (CAP_HESSIAN_VECTOR, "hessian-vector"),
            (CAP_TRUE_RANK, "true-rank"),
            (CAP_GRADIENT_NOISE, "gradient-noise"),
            (CAP_HESSIAN_SPECTRUM, "hessian-spectrum"),
            (CAP_ONLINE, "online"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.capabilities & bit != 0)
        .map(|(_, name)| name)
        .collect()
    }
}

/// A loaded plugin library and its checked descriptor.
#[derive(Clone)]
pub struct Plugin {
    info: PluginInfo,
    /// Never read: holding it keeps the library loaded while this plugin or any instance made
    /// from it lives.
    _library: Arc<libloading::Library>,
    vtable: *const std::ffi::c_void,
}

// SAFETY: the descriptor and vtable are immutable statics of the library, which `library` keeps
// loaded; the ABI requires plugin functions to be callable from any thread.
unsafe impl Send for Plugin {}
// SAFETY: as above; `Plugin` exposes no interior mutability.
unsafe impl Sync for Plugin {}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("info", &self.info).finish()
    }
}

impl Plugin {
    /// Opens a library file and checks its descriptor: the ABI version before anything else.
    pub fn open(file: &Path) -> Result<Plugin, PluginError> {
        // SAFETY: loading runs the library's initialisers. Plugins are trusted native code, and
        // only files from the plugin directory reach here (by name, see `PluginDir::load`).
        let library = unsafe { libloading::Library::new(file) }.map_err(|e| PluginError::Load {
            file: file.into(),
            reason: error_chain(&e),
        })?;
        // SAFETY: the symbol, if present, has the `DescriptorFn` signature by the ABI.
        let descriptor_fn: DescriptorFn =
            unsafe { library.get::<DescriptorFn>(DESCRIPTOR_SYMBOL.as_bytes()) }
                .map(|symbol| *symbol)
                .map_err(|_| PluginError::NotAPlugin { file: file.into() })?;
        let malformed = |problem: &str| PluginError::Malformed {
            file: file.into(),
            problem: problem.into(),
        };
        // SAFETY: calling the exported descriptor function, which takes nothing and returns a pointer.
        let descriptor: *const PluginDescriptor = unsafe { descriptor_fn() };
        if descriptor.is_null() {
            return Err(malformed("the descriptor pointer is null"));
        }
        // SAFETY: every ABI version starts the descriptor with a u32 version; read only that first.
        let found = unsafe { std::ptr::read(descriptor as *const u32) };
        if found != ABI_VERSION {
            return Err(PluginError::AbiMismatch {
                file: file.into(),
                expected: ABI_VERSION,
                found,
            });
        }
        // SAFETY: same version, so the layout is `PluginDescriptor`, a static of the library.
        let d = unsafe { &*descriptor };
        let kind = match d.kind {
            KIND_OBJECTIVE => Kind::Objective,
            KIND_PRECONDITIONER => Kind::Preconditioner,
            other => return Err(malformed(&format!("unknown kind {other}"))),
        };
        let text = |ptr: *const std::ffi::c_char, what: &str| {
            if ptr.is_null() {
                return Err(malformed(&format!("the {what} is null")));
            }
            // SAFETY: non-null, and the ABI requires a NUL-terminated static string.
            unsafe { CStr::from_ptr(ptr) }
                .to_str()
                .map(str::to_owned)
                .map_err(|_| malformed(&format!("the {what} is not UTF-8")))
        };
        let name = text(d.name, "name")?;
        let version = text(d.version, "version")?;
        if d.vtable.is_null() {
            return Err(malformed("the vtable is null"));
        }
        let info = PluginInfo {
            name,
            kind,
            version,
            capabilities: d.capabilities,
            file: file.into(),
        };
        Ok(Plugin {
            info,
            _library: Arc::new(library),
            vtable: d.vtable,
        })
    }

    /// The descriptor's content.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn expect_kind(&self, expected: Kind) -> Result<(), PluginError> {
        if self.info.kind != expected {
            return Err(PluginError::WrongKind {
                name: self.info.name.clone(),
                expected,
                found: self.info.kind,
            });
        }
        Ok(())
    }

    /// Calls one vtable entry with a fresh error buffer, turning its status into a `Result`.
    fn call(
        &self,
        function: &'static str,
        body: impl FnOnce(*mut ErrorMessage) -> i32,
    ) -> Result<(), PluginError> {
        let mut err = ErrorMessage::new();
        match body(&mut err) {
            STATUS_OK => Ok(()),
            status => Err(PluginError::Call {
                plugin: self.info.name.clone(),
                function,
                message: err.text(),
                panicked: status == STATUS_PANIC,
            }),
        }
    }

    /// An error if any value is not finite.
    fn check_finite(&self, what: &'static str, values: &[f64]) -> Result<(), PluginError> {
        match values.iter().position(|v| !v.is_finite()) {
            Some(index) => Err(PluginError::NonFinite {
                plugin: self.info.name.clone(),
                what,
                index,
                value: values[index],
            }),
            None => Ok(()),
        }
    }

    /// Conformance: `create` with parameter bytes that are not UTF-8 must return an error status
    /// (not crash, not succeed). Returns the plugin's message.
    pub(crate) fn rejects_invalid_parameter_bytes(&self) -> Result<String, String> {
        use ldbench_sdk::abi::{ObjectiveVTable, PrecondProblem, PrecondVTable};
        let bytes = b"\xff\xfe = 1";
        let mut state = std::ptr::null_mut();
        let noise = [1.0];
        let outcome = match self.info.kind {
            Kind::Objective => {
                // SAFETY: a checked objective descriptor points at an `ObjectiveVTable`.
                let vtable = unsafe { &*(self.vtable as *const ObjectiveVTable) };
                let outcome = self.call("create", |err| {
                    // SAFETY: valid byte buffer, state slot and error buffer.
                    unsafe { (vtable.create)(bytes.as_ptr(), bytes.len(), 0, &mut state, err) }
                });
                if outcome.is_ok() && !state.is_null() {
                    // SAFETY: the state this vtable's `create` just returned.
                    unsafe { (vtable.destroy)(state) }
                }
                outcome
            }
            Kind::Preconditioner => {
                // SAFETY: a checked preconditioner descriptor points at a `PrecondVTable`.
                let vtable = unsafe { &*(self.vtable as *const PrecondVTable) };
                let problem = PrecondProblem {
                    dim: 1,
                    hessian: std::ptr::null(),
                    gradient_noise: noise.as_ptr(),
                };
                let outcome = self.call("create", |err| {
                    // SAFETY: valid bytes, a 1×1 problem that outlives the call, a state slot.
                    unsafe {
                        (vtable.create)(bytes.as_ptr(), bytes.len(), 0, &problem, &mut state, err)
                    }
                });
                if outcome.is_ok() && !state.is_null() {
                    // SAFETY: the state this vtable's `create` just returned.
                    unsafe { (vtable.destroy)(state) }
                }
                outcome
            }
        };
        match outcome {
            Ok(()) => Err("accepted parameters that are not UTF-8".to_owned()),
            Err(PluginError::Call {
                panicked: false,
                message,
                ..
            }) => Ok(message),
            Err(e) => Err(e.to_string()),
        }
    }

    /// m for a block of `len` values with n rows, or an error.
    fn columns(&self, len: usize, n: usize) -> Result<usize, PluginError> {
        if !len.is_multiple_of(n) {
            return Err(self.invalid(format!("a block of {len} values is not n×m with n = {n}")));
        }
        Ok(len / n)
    }

    fn invalid(&self, problem: String) -> PluginError {
        PluginError::Invalid {
            plugin: self.info.name.clone(),
            problem,
        }
    }
}

/// A directory of plugin libraries, addressed by plugin name.
#[derive(Debug, Clone)]
pub struct PluginDir {
    dir: PathBuf,
}

impl PluginDir {
    /// `explicit` if given, else `$LDBENCH_PLUGIN_DIR`, else the directory of the running
    /// executable (the workspace's `target/release` for a release build, where cargo puts the
    /// plugin libraries).
    pub fn resolve(explicit: Option<&Path>) -> PluginDir {
        let dir = explicit
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os(PLUGIN_DIR_ENV).map(PathBuf::from))
            .or_else(|| {
                std::env::current_exe()
                    .ok()
                    .and_then(|exe| exe.parent().map(Path::to_path_buf))
            })
            .unwrap_or_else(|| PathBuf::from("."));
        PluginDir { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The library file a plugin name maps to: `lib<name with _>.so` on Linux.
    pub fn file_of(&self, name: &str) -> Result<PathBuf, PluginError> {
        let forbidden = name.is_empty()
            || name.contains(['/', '\\'])
            || name.contains("..")
            || name.contains('\0');
        if forbidden {
            return Err(PluginError::InvalidName(name.into()));
        }
        Ok(self
            .dir
            .join(libloading::library_filename(name.replace('-', "_"))))
    }

    /// Loads plugin `name`; its descriptor must carry the same name.
    pub fn load(&self, name: &str) -> Result<Plugin, PluginError> {
        let file = self.file_of(name)?;
        if !file.is_file() {
            let available = self
                .list()
                .into_iter()
                .filter_map(Result::ok)
                .map(|p| p.name)
                .collect();
            return Err(PluginError::NotFound {
                name: name.into(),
                dir: self.dir.clone(),
                available,
            });
        }
        let plugin = Plugin::open(&file)?;
        if plugin.info.name != name {
            return Err(PluginError::Malformed {
                file,
                problem: format!("the descriptor names '{}', not '{name}'", plugin.info.name),
            });
        }
        Ok(plugin)
    }

    /// Every library in the directory, opened, in file-name order: a plugin's info, or why the
    /// file is not a usable plugin.
    pub fn list(&self) -> Vec<Result<PluginInfo, PluginError>> {
        let (prefix, suffix) = (std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| {
                path.is_file()
                    && path
                        .file_name()
                        .and_then(|f| f.to_str())
                        .is_some_and(|f| f.starts_with(prefix) && f.ends_with(suffix))
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|file| Plugin::open(file).map(|p| p.info))
            .collect()
    }
}

/// A libloading error with its causes (its `Display` alone says only that dlopen failed).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Replaces every string value `"@FILE"` in TOML plugin parameters by the numbers in FILE (.npy
/// or CSV): a vector becomes an array, a matrix an array of rows. Plugins do no I/O; this is how
/// they receive published data such as a Σ_yx.
pub fn expand_file_params(params: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    fn expand(value: &mut toml::Value) -> anyhow::Result<()> {
        match value {
            toml::Value::String(s) if s.starts_with('@') => {
                let file = crate::matrix_file::MatrixFile::read(Path::new(&s[1..]))?;
                let row = |i: usize| {
                    toml::Value::Array(
                        (0..file.cols)
                            .map(|j| toml::Value::Float(file.get(i, j)))
                            .collect(),
                    )
                };
                *value = match file.as_vector() {
                    Some(v) if file.rows == 1 || file.cols == 1 => {
                        toml::Value::Array(v.iter().map(|x| toml::Value::Float(*x)).collect())
                    }
                    _ => toml::Value::Array((0..file.rows).map(row).collect()),
                };
            }
            toml::Value::Array(items) => items.iter_mut().try_for_each(expand)?,
            toml::Value::Table(table) => table.iter_mut().try_for_each(|(_, v)| expand(v))?,
            _ => {}
        }
        Ok(())
    }
    if !params.contains('@') {
        return Ok(params.to_owned());
    }
    let mut table: toml::Table = params
        .parse()
        .context("the plugin parameters are not valid TOML")?;
    table.iter_mut().try_for_each(|(_, v)| expand(v))?;
    Ok(toml::to_string(&table)?)
}
