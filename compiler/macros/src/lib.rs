//! smelt-macros
