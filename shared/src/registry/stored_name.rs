use std::fmt;

/// The prefix every archive is stored under, as in the original deployment. Only registration
/// writes here, so every archive under it is one that rows reference, or one a registration left
/// when its commit failed with an unknown outcome or its process stopped before the commit, or
/// one a registration of the same version again replaced; `registry::gc` removes those.
pub const ARCHIVE_PREFIX: &str = "connector-registry";
/// Where upload URLs point: archives waiting to be registered by reference. Nothing here can be
/// read through the registry; a registration copies the upload under `ARCHIVE_PREFIX` once it
/// is valid, and removes it either way.
pub const UPLOAD_PREFIX: &str = "connector-registry-uploads";

const MAX_BASE_LEN: usize = 100;

/// An archive's stored file name: `<base>_<6 hex><last extension>`, as the original derives it
/// (`kafka-connector.tar.gz` → `kafka-connector.tar_1a2b3c.gz`). It is the rows' `source_url`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredName(String);

impl StoredName {
    /// A fresh stored name for an uploaded file name. Only the last path segment of the upload's
    /// name is used, and characters outside `[A-Za-z0-9._-]` become `_`.
    pub fn generate(upload_name: &str) -> Self {
        let last_segment = upload_name.rsplit(['/', '\\']).next().unwrap_or_default();
        let clean: String = last_segment
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
            .collect();
        let clean = clean.trim_start_matches('.');
        let (base, extension) = split_extension(if clean.is_empty() { "connector" } else { clean });
        let base: String = base.chars().take(MAX_BASE_LEN).collect();
        let extension: String = extension.chars().take(16).collect();
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
        Self(format!("{base}_{suffix}{extension}"))
    }

    /// Accepts a stored name given back by a client (register by reference, read URLs).
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 200
            && !raw.starts_with('.')
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> ArchiveKey {
        ArchiveKey(format!("{ARCHIVE_PREFIX}/{}", self.0))
    }

    /// Where an upload for this name waits to be registered.
    pub fn upload_key(&self) -> ArchiveKey {
        ArchiveKey(format!("{UPLOAD_PREFIX}/{}", self.0))
    }
}

/// Node's `path.extname`: from the last dot, unless the name has no dot after its first character.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    }
}

impl fmt::Display for StoredName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an archive lives in a store: `connector-registry/<stored name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArchiveKey(String);

impl ArchiveKey {
    /// A key a store listed (`ArchiveStore::list`): whatever it holds under the prefix asked for,
    /// not only what registration wrote there.
    pub(crate) fn listed(key: String) -> Self {
        Self(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The stored name, i.e. the key without its prefix.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }

    /// The media type an archive is served with, by its name: never one a browser renders, so
    /// that an "archive" that is a page cannot run on the registry's origin.
    pub fn media_type(&self) -> &'static str {
        let name = self.file_name().to_ascii_lowercase();
        if name.ends_with(".gz") || name.ends_with(".tgz") {
            "application/gzip"
        } else if name.ends_with(".zip") {
            "application/zip"
        } else if name.ends_with(".tar") {
            "application/x-tar"
        } else {
            "application/octet-stream"
        }
    }

    /// `Content-Disposition` of a download: an attachment, under its stored name (stored names
    /// are plain ASCII without quotes).
    pub fn content_disposition(&self) -> String {
        format!("attachment; filename=\"{}\"", self.file_name())
    }
}

impl fmt::Display for ArchiveKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_served_as_downloads_of_their_type() {
        let key = |name: &str| StoredName::parse(name).unwrap().key();
        assert_eq!(key("kafka.tar_1a2b3c.gz").media_type(), "application/gzip");
        assert_eq!(key("kafka_1a2b3c.zip").media_type(), "application/zip");
        assert_eq!(key("kafka_1a2b3c.tar").media_type(), "application/x-tar");
        assert_eq!(key("kafka_1a2b3c.html").media_type(), "application/octet-stream");
        assert_eq!(key("kafka.tar_1a2b3c.gz").content_disposition(), "attachment; filename=\"kafka.tar_1a2b3c.gz\"");
    }

    fn shape(name: &StoredName) -> String {
        // Replace the random part so names can be compared.
        let s = name.as_str();
        let at = s.rfind('_').unwrap();
        assert!(s[at + 1..at + 7].chars().all(|c| c.is_ascii_hexdigit()), "{s}");
        format!("{}_XXXXXX{}", &s[..at], &s[at + 7..])
    }

    #[test]
    fn inserts_the_suffix_before_the_last_extension() {
        assert_eq!(shape(&StoredName::generate("kafka-connector.tar.gz")), "kafka-connector.tar_XXXXXX.gz");
        assert_eq!(shape(&StoredName::generate("c.zip")), "c_XXXXXX.zip");
        assert_eq!(shape(&StoredName::generate("plain")), "plain_XXXXXX");
    }

    #[test]
    fn keeps_only_a_safe_last_segment() {
        assert_eq!(shape(&StoredName::generate("../../etc/passwd")), "passwd_XXXXXX");
        assert_eq!(shape(&StoredName::generate("C:\\x\\my file.tgz")), "my_file_XXXXXX.tgz");
        assert_eq!(shape(&StoredName::generate("")), "connector_XXXXXX");
        assert_eq!(shape(&StoredName::generate(".hidden")), "hidden_XXXXXX");
    }

    #[test]
    fn keys_carry_the_prefix() {
        let name = StoredName::parse("a.tar_123456.gz").unwrap();
        assert_eq!(name.key().as_str(), "connector-registry/a.tar_123456.gz");
        assert_eq!(name.key().file_name(), "a.tar_123456.gz");
        assert_eq!(name.upload_key().as_str(), "connector-registry-uploads/a.tar_123456.gz");
        assert!(StoredName::parse("../x").is_none());
        assert!(StoredName::parse("a/b").is_none());
    }
}
