//! smelt-support
