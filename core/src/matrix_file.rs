//! Reading the matrices and vectors a user brings: NumPy `.npy` files (float64 or float32, C or
//! Fortran order, as `numpy.save` writes them) and CSV files of numbers.
//!
//! Every failure names the file; no input makes the reader panic.

use std::path::{Path, PathBuf};

/// The floating-point precision the data was stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// IEEE single precision (float32 .npy).
    F32,
    /// IEEE double precision (float64 .npy, and CSV text).
    F64,
}

/// A matrix (or vector) read from a file, column-major.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixFile {
    /// Where it came from, for messages.
    pub path: PathBuf,
    /// Number of rows.
    pub rows: usize,
    /// Number of columns (1 for a 1-D .npy array).
    pub cols: usize,
    /// Entries, column-major.
    pub data: Vec<f64>,
    /// Storage precision.
    pub precision: Precision,
}

/// Why a file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MatrixFileError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read the file: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The content is not what the format requires.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A NaN or infinity in the data.
    #[error("{path}: entry ({row}, {col}) is {value}; every entry must be a finite number")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// Row (0-based).
        row: usize,
        /// Column (0-based).
        col: usize,
        /// The value found.
        value: f64,
    },
}

impl MatrixFile {
    /// Reads `path` as .npy when its extension is `npy`, as CSV otherwise.
    pub fn read(path: &Path) -> Result<Self, MatrixFileError> {
        let bytes = std::fs::read(path).map_err(|source| MatrixFileError::Io {
            path: path.into(),
            source,
        })?;
        let is_npy = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
        let file = if is_npy {
            parse_npy(path, &bytes)?
        } else {
            parse_csv(path, &bytes)?
        };
        file.check_finite()?;
        Ok(file)
    }

    /// Entry (i, j).
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[j * self.rows + i]
    }

    /// The entries as a vector when one dimension is 1 (a 1-D array, one row or one column).
    pub fn as_vector(&self) -> Option<&[f64]> {
        (self.rows == 1 || self.cols == 1).then_some(&self.data)
    }

    /// An error about this file.
    pub fn error(&self, message: impl Into<String>) -> MatrixFileError {
        MatrixFileError::Format {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    fn check_finite(&self) -> Result<(), MatrixFileError> {
        match self.data.iter().position(|v| !v.is_finite()) {
            Some(k) => Err(MatrixFileError::NonFinite {
                path: self.path.clone(),
                row: k % self.rows,
                col: k / self.rows,
                value: self.data[k],
            }),
            None => Ok(()),
        }
    }
}

fn format_error(path: &Path, message: impl Into<String>) -> MatrixFileError {
    MatrixFileError::Format {
        path: path.into(),
        message: message.into(),
    }
}

fn parse_npy(path: &Path, bytes: &[u8]) -> Result<MatrixFile, MatrixFileError> {
    let npy = npyz::NpyFile::new(bytes).map_err(|e| {
        format_error(
            path,
            format!("not a valid .npy file ({e}); save it with numpy.save"),
        )
    })?;
    let shape = npy.shape().to_vec();
    let (rows, cols) = match shape[..] {
        [n] => (n, 1),
        [r, c] => (r, c),
        _ => {
            return Err(format_error(
                path,
                format!("the array has shape {shape:?}; expected a matrix (2-D) or a vector (1-D)"),
            ));
        }
    };
    let too_big = || format_error(path, format!("the array shape {shape:?} is too large"));
    let rows = usize::try_from(rows).map_err(|_| too_big())?;
    let cols = usize::try_from(cols).map_err(|_| too_big())?;
    let len = rows.checked_mul(cols).ok_or_else(too_big)?;
    if len == 0 {
        return Err(format_error(
            path,
            format!("the array has shape {shape:?} and holds no number"),
        ));
    }
    if (bytes.len() as u128) < len as u128 * 4 {
        return Err(format_error(
            path,
            format!("the header announces shape {shape:?} but the file is too short"),
        ));
    }
    let order = npy.order();
    let dtype = npy.dtype();
    let truncated = |e: std::io::Error| format_error(path, format!("cannot read the data: {e}"));
    let (stored, precision) = match npy.try_data::<f64>() {
        Ok(reader) => (
            reader.collect::<Result<Vec<f64>, _>>().map_err(truncated)?,
            Precision::F64,
        ),
        Err(npy) => match npy.try_data::<f32>() {
            Ok(reader) => (
                reader
                    .map(|v| v.map(f64::from))
                    .collect::<Result<Vec<f64>, _>>()
                    .map_err(truncated)?,
                Precision::F32,
            ),
            Err(_) => {
                return Err(format_error(
                    path,
                    format!(
                        "the data type is {}; expected float64 or float32 (convert with a.astype(numpy.float64))",
                        dtype.descr()
                    ),
                ));
            }
        },
    };
    let data = match order {
        npyz::Order::Fortran => stored,
        // C order is row-major: transpose into column-major.
        npyz::Order::C => (0..len)
            .map(|k| stored[(k % rows) * cols + k / rows])
            .collect(),
    };
    Ok(MatrixFile {
        path: path.into(),
        rows,
        cols,
        data,
        precision,
    })
}

fn parse_csv(path: &Path, bytes: &[u8]) -> Result<MatrixFile, MatrixFileError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .flexible(true)
        .from_reader(bytes);
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format_error(path, format!("not valid CSV: {e}")))?;
        let line = record.position().map_or(0, |p| p.line());
        let row = record
            .iter()
            .enumerate()
            .map(|(col, field)| {
                field.parse::<f64>().map_err(|_| {
                    format_error(
                        path,
                        format!(
                            "line {line}, column {}: '{field}' is not a number (the file must hold numbers \
                             only, without a header row)",
                            col + 1
                        ),
                    )
                })
            })
            .collect::<Result<Vec<f64>, _>>()?;
        if let Some(first) = rows.first().filter(|first| first.len() != row.len()) {
            return Err(format_error(
                path,
                format!(
                    "line {line} has {} values but the first line has {}",
                    row.len(),
                    first.len()
                ),
            ));
        }
        rows.push(row);
    }
    let (r, c) = (rows.len(), rows.first().map_or(0, Vec::len));
    if r * c == 0 {
        return Err(format_error(path, "the file holds no number"));
    }
    let data = (0..r * c).map(|k| rows[k % r][k / r]).collect();
    Ok(MatrixFile {
        path: path.into(),
        rows: r,
        cols: c,
        data,
        precision: Precision::F64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> Result<MatrixFile, MatrixFileError> {
        parse_csv(Path::new("m.csv"), text.as_bytes()).and_then(|f| f.check_finite().map(|_| f))
    }

    #[test]
    fn csv_reads_row_major_text_into_column_major_data() {
        let m = csv("# comment\n1, 2\n3,4\n").unwrap();
        assert_eq!((m.rows, m.cols), (2, 2));
        assert_eq!(m.data, [1.0, 3.0, 2.0, 4.0]);
        assert_eq!(m.get(0, 1), 2.0);
    }

    #[test]
    fn csv_errors_name_the_file_and_the_place() {
        let header = csv("a,b\n1,2\n").unwrap_err().to_string();
        assert!(
            header.starts_with("m.csv: line 1, column 1: 'a' is not a number"),
            "{header}"
        );
        let ragged = csv("1,2\n3\n").unwrap_err().to_string();
        assert!(
            ragged.contains("line 2 has 1 values but the first line has 2"),
            "{ragged}"
        );
        let nan = csv("1,NaN\n").unwrap_err().to_string();
        assert!(nan.contains("entry (0, 1) is NaN"), "{nan}");
        assert!(csv("").unwrap_err().to_string().contains("no number"));
    }

    #[test]
    fn npy_garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\x93NUMPY\x01\x00",
            b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'",
            b"plain text",
        ] {
            assert!(parse_npy(Path::new("x.npy"), bytes).is_err());
        }
    }
}
