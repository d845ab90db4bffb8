//! Diagnostics: what is wrong with a set of resources, and where.
//!
//! Every problem Weft finds in user input is a [`Diagnostic`] that names the file, the line, the
//! resource, the field path inside it, what is wrong, and (where we can tell) what would be
//! valid. Errors make the whole set invalid; warnings are reported but do not block it.

use std::fmt;
use std::path::PathBuf;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem found in the input, with its location.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file the problem is in (empty for problems of the set as a whole).
    pub file: PathBuf,
    /// 1-based line in `file`, or 0 when unknown.
    pub line: u64,
    /// `Kind namespace/name` of the resource, when the problem belongs to one.
    pub resource: Option<String>,
    /// Field path inside the resource, e.g. `spec.rules[0].backendRefs[1].name`.
    pub field: Option<String>,
    pub message: String,
    /// What would be valid instead, when we can say.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: PathBuf::new(),
            line: 0,
            resource: None,
            field: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(message)
        }
    }

    pub fn at(mut self, file: impl Into<PathBuf>, line: u64) -> Self {
        self.file = file.into();
        self.line = line;
        self
    }

    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if !self.file.as_os_str().is_empty() {
            if self.line > 0 {
                write!(f, "{}:{}: ", self.file.display(), self.line)?;
            } else {
                write!(f, "{}: ", self.file.display())?;
            }
        }
        write!(f, "{level}: ")?;
        if let Some(resource) = &self.resource {
            write!(f, "{resource}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// The diagnostics of one load: errors and warnings, in the order found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

/// The error returned when a set of resources cannot be used: every error found, not just the
/// first, so a user fixes them in one pass.
#[derive(Debug, thiserror::Error)]
#[error("{} error(s) in the configuration:\n{}", .0.errors().count(), .0)]
pub struct InvalidConfig(pub Diagnostics);
