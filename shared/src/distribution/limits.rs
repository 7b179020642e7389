/// Hard limits on what a distribution may hold. Every one has its own error, so an author learns
/// which limit a package broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Size of the archive file itself.
    pub max_archive_bytes: u64,
    /// Bytes the archive inflates to (a tar: every header and block, counted on the inflated
    /// stream itself; a zip: the sizes its entries declare), and also the sum of declared sizes.
    pub max_uncompressed_bytes: u64,
    /// Number of entries (files, folders, links, and a tar's extension and global headers).
    pub max_entries: u64,
    /// Each tar extension header (PAX local or global, GNU long name or long link), and so each
    /// entry's path.
    pub max_header_bytes: u64,
    /// A zip's central directory (names, extra fields and comments of every entry), which the
    /// zip reader holds in memory.
    pub max_zip_directory_bytes: u64,
    pub max_metadata_bytes: u64,
    pub max_ui_config_bytes: u64,
    pub max_icon_bytes: u64,
    /// All icons of a package together.
    pub max_icons_total_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        Self {
            // Real distributions with their libraries are tens to hundreds of MB.
            max_archive_bytes: 1024 * MIB,
            max_uncompressed_bytes: 2048 * MIB,
            max_entries: 20_000,
            // Linux paths end at 4 KiB; real PAX headers hold a path and a few times.
            max_header_bytes: 64 * 1024,
            // A real package's entry takes ~100-200 bytes of central directory.
            max_zip_directory_bytes: 16 * MIB,
            max_metadata_bytes: 256 * 1024,
            max_ui_config_bytes: MIB,
            // An icon becomes a base64 data URI inside every row that names it.
            max_icon_bytes: 256 * 1024,
            max_icons_total_bytes: 16 * MIB,
        }
    }
}
