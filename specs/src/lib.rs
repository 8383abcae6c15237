//! smelt-specs
