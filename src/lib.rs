//! smelt facade
