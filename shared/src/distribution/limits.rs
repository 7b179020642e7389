/// Hard limits on what a distribution may hold. Every one has its own error, so an author learns
/// which limit a package broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Size of the archive file itself.
    pub max_archive_bytes: u64,
    /// Sum of the sizes its entries declare once inflated.
    pub max_uncompressed_bytes: u64,
    /// Number of entries (files, folders, links) in the archive.
    pub max_entries: u64,
    pub max_metadata_bytes: u64,
    pub max_ui_config_bytes: u64,
    pub max_icon_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        Self {
            // Real distributions with their libraries are tens to hundreds of MB.
            max_archive_bytes: 1024 * MIB,
            max_uncompressed_bytes: 2048 * MIB,
            max_entries: 20_000,
            max_metadata_bytes: 256 * 1024,
            max_ui_config_bytes: MIB,
            // An icon becomes a base64 data URI inside every row that names it.
            max_icon_bytes: 256 * 1024,
        }
    }
}
