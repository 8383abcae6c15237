//! smelt-model-check
