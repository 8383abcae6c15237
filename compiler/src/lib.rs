//! smelt-compiler
