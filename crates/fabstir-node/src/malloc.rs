//! The C allocator's arenas, capped at start-up so the node's memory settles.
//!
//! glibc's malloc gives threads their own arenas (up to 8 per core) and
//! rarely returns their free pages to the system. The node has many threads
//! (the async runtime, one pool per prover worker, the verification pool), so
//! under steady load its resident memory kept creeping up: a 10-minute run of
//! back-to-back `load` rounds went from 26 to 58 MB and was still rising.
//! With the arenas capped the freed memory is reused and RSS stays flat (the
//! figures and the choice are in docs/PERFORMANCE.md, "Memory").
//!
//! The cap is set with `mallopt(M_ARENA_MAX, …)` before the first thread
//! starts. An operator can choose another value with glibc's own settings,
//! `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES=glibc.malloc.arena_max=N`: when
//! either is set the node leaves the allocator as glibc configured it.
//! Other platforms (musl, macOS) are left alone.

/// Arenas the node allows by default: chosen by measurement (see
/// docs/PERFORMANCE.md, "Memory").
pub const DEFAULT_ARENA_MAX: u32 = 2;

/// The environment variable glibc reads for the arena cap.
pub const ARENA_MAX_ENV: &str = "MALLOC_ARENA_MAX";

/// The environment variable glibc reads its tunables from.
pub const TUNABLES_ENV: &str = "GLIBC_TUNABLES";

/// What [`cap_arenas`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arenas {
    /// The node capped the arenas at this many.
    Capped(u32),
    /// The environment sets the cap (the variable named); glibc applied it.
    FromEnvironment(&'static str),
    /// Not glibc, or `mallopt` refused: the allocator's defaults apply.
    Unchanged,
}

/// The decision for the given environment values (`MALLOC_ARENA_MAX`,
/// `GLIBC_TUNABLES`): leave it to glibc when either sets the cap, else cap
/// at [`DEFAULT_ARENA_MAX`].
pub fn decide(arena_max: Option<&str>, tunables: Option<&str>) -> Arenas {
    if arena_max.is_some() {
        return Arenas::FromEnvironment(ARENA_MAX_ENV);
    }
    if tunables.is_some_and(|t| t.contains("glibc.malloc.arena_max")) {
        return Arenas::FromEnvironment(TUNABLES_ENV);
    }
    Arenas::Capped(DEFAULT_ARENA_MAX)
}

/// Caps the allocator's arenas unless the environment does; call first
/// thing in `main`, before any thread starts.
pub fn cap_arenas() -> Arenas {
    let arena_max = std::env::var(ARENA_MAX_ENV).ok();
    let tunables = std::env::var(TUNABLES_ENV).ok();
    match decide(arena_max.as_deref(), tunables.as_deref()) {
        Arenas::Capped(n) => apply(n),
        other => other,
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply(n: u32) -> Arenas {
    let value = libc::c_int::try_from(n).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only changes the allocator's parameters; it is called
    // with a documented parameter and a positive value.
    if unsafe { libc::mallopt(libc::M_ARENA_MAX, value) } == 1 {
        Arenas::Capped(n)
    } else {
        Arenas::Unchanged
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply(_n: u32) -> Arenas {
    Arenas::Unchanged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_overrides_the_default_cap() {
        assert_eq!(decide(None, None), Arenas::Capped(DEFAULT_ARENA_MAX));
        assert_eq!(
            decide(Some("8"), None),
            Arenas::FromEnvironment(ARENA_MAX_ENV)
        );
        // Set but empty or odd: glibc's business, not the node's.
        assert_eq!(
            decide(Some(""), None),
            Arenas::FromEnvironment(ARENA_MAX_ENV)
        );
        assert_eq!(
            decide(None, Some("glibc.malloc.check=0:glibc.malloc.arena_max=4")),
            Arenas::FromEnvironment(TUNABLES_ENV)
        );
        // Other tunables do not set the cap.
        assert_eq!(
            decide(None, Some("glibc.malloc.trim_threshold=131072")),
            Arenas::Capped(DEFAULT_ARENA_MAX)
        );
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_accepts_the_cap() {
        assert_eq!(apply(DEFAULT_ARENA_MAX), Arenas::Capped(DEFAULT_ARENA_MAX));
    }
}
