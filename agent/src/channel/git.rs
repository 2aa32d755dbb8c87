//! The git channel: signed annotated tags of a repository (being written).
