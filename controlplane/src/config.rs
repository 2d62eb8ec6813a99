//! The controlplane's config file (work in progress).
