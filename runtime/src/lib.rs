//! smelt-runtime
