use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::domain::Timestamp;
use crate::error::StoreError;
use crate::registry::{ArchiveKey, ArchiveStore, StoredObject};

/// Archives as files. Uploads are staged on the same file system, so storing one is a hard link:
/// atomic, and never over an existing archive. Presigned URLs point at the server that serves
/// this store (`/files/<key>`), signed with a key kept in the data folder.
pub struct FileArchiveStore {
    root: PathBuf,
    staging: PathBuf,
    signer: UrlSigner,
}

impl FileArchiveStore {
    /// Gives the file at `source` the name `target`: atomic, and never over an existing archive.
    async fn link(&self, source: PathBuf, target: PathBuf) -> Result<(), StoreError> {
        blocking(move || {
            File::open(&source)?.sync_all()?;
            let parent = target.parent().expect("archive keys have a prefix folder");
            fs::create_dir_all(parent)?;
            match fs::hard_link(&source, &target) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(Err(StoreError::AlreadyExists)),
                other => other?,
            }
            // Make the new name durable before the rows that point at it are committed.
            File::open(parent)?.sync_all()?;
            Ok(Ok(()))
        })
        .await?
    }

    /// `public_url` is where clients reach the server, e.g. `http://127.0.0.1:3000`.
    pub fn open(data_dir: &Path, public_url: &str) -> anyhow::Result<Self> {
        let root = data_dir.join("archives");
        let staging = data_dir.join("staging");
        fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        // Anything left in staging belongs to a process that died mid-upload.
        if staging.exists() {
            fs::remove_dir_all(&staging).with_context(|| format!("emptying {}", staging.display()))?;
        }
        fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
        let signer = UrlSigner::open(&data_dir.join("url-signing.key"), public_url)?;
        Ok(Self { root, staging, signer })
    }

    /// Where the archive for `key` is (or would be) kept.
    pub fn path_of(&self, key: &ArchiveKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    /// Checks a presigned URL's query (`expires`, `signature`) for `method` on `key`.
    pub fn verify(&self, method: &str, key: &ArchiveKey, query: &str) -> Result<(), &'static str> {
        self.signer.verify(method, key, query)
    }
}

#[async_trait]
impl ArchiveStore for FileArchiveStore {
    fn staging_dir(&self) -> &Path {
        &self.staging
    }

    async fn put(&self, key: &ArchiveKey, staged: &Path) -> Result<(), StoreError> {
        self.link(staged.to_owned(), self.path_of(key)).await
    }

    async fn copy(&self, from: &ArchiveKey, to: &ArchiveKey) -> Result<(), StoreError> {
        // Archives are never changed in place, so a second name for the same file is a copy.
        self.link(self.path_of(from), self.path_of(to)).await
    }

    async fn delete(&self, key: &ArchiveKey) -> Result<(), StoreError> {
        let target = self.path_of(key);
        blocking(move || match fs::remove_file(&target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        })
        .await
    }

    async fn exists(&self, key: &ArchiveKey) -> Result<bool, StoreError> {
        let target = self.path_of(key);
        blocking(move || target.try_exists()).await
    }

    async fn presign_put(&self, key: &ArchiveKey, expiry: Duration) -> Result<String, StoreError> {
        Ok(self.signer.url("PUT", key, expiry))
    }

    async fn presign_get(&self, key: &ArchiveKey, expiry: Duration) -> Result<String, StoreError> {
        Ok(self.signer.url("GET", key, expiry))
    }

    async fn open(&self, key: &ArchiveKey) -> Result<Option<File>, StoreError> {
        let target = self.path_of(key);
        blocking(move || match File::open(&target) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<StoredObject>, StoreError> {
        let (root, prefix) = (self.root.clone(), prefix.to_owned());
        blocking(move || files_under(&root, &prefix)).await
    }
}

/// The files whose key (their path below `root`, `/`-separated) starts with `prefix`. Only the
/// folder the prefix names is walked; a file removed while it is walked is left out.
fn files_under(root: &Path, prefix: &str) -> io::Result<Vec<StoredObject>> {
    let start = match prefix.rfind('/') {
        Some(end) => root.join(&prefix[..end]),
        None => root.to_owned(),
    };
    let gone = |e: &io::Error| e.kind() == io::ErrorKind::NotFound;
    let mut found = Vec::new();
    let mut folders = vec![start];
    while let Some(folder) = folders.pop() {
        let entries = match fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let metadata = match entry.metadata() {
                Ok(metadata) => metadata,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            if metadata.is_dir() {
                folders.push(entry.path());
                continue;
            }
            let path = entry.path();
            // Names that are not UTF-8 are no keys this store wrote, nor any it could be asked for.
            let Some(key) = path.strip_prefix(root).ok().and_then(Path::to_str) else { continue };
            let key = key.replace(std::path::MAIN_SEPARATOR, "/");
            if metadata.is_file() && key.starts_with(prefix) {
                let modified = Timestamp::from(chrono::DateTime::<chrono::Utc>::from(metadata.modified()?));
                found.push(StoredObject { key: ArchiveKey::listed(key), modified, bytes: metadata.len() });
            }
        }
    }
    Ok(found)
}

/// Signs and checks the URLs of the embedded store: HMAC-SHA256 over method, key and expiry, with
/// a random key created on first start.
struct UrlSigner {
    secret: Vec<u8>,
    base_url: String,
}

impl UrlSigner {
    fn open(path: &Path, base_url: &str) -> anyhow::Result<Self> {
        let secret = match fs::read(path) {
            Ok(secret) if secret.len() >= 32 => secret,
            _ => {
                let secret: Vec<u8> = (0..2)
                    .flat_map(|_| uuid::Uuid::new_v4().into_bytes())
                    .chain(uuid::Uuid::new_v4().into_bytes())
                    .collect();
                write_private(path, &secret).with_context(|| format!("writing {}", path.display()))?;
                secret
            }
        };
        Ok(Self { secret, base_url: base_url.trim_end_matches('/').to_owned() })
    }

    fn mac(&self, method: &str, key: &ArchiveKey, expires: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any size");
        mac.update(format!("{method}\n{}\n{expires}", key.as_str()).as_bytes());
        mac
    }

    fn url(&self, method: &str, key: &ArchiveKey, expiry: Duration) -> String {
        let expires = unix_now() + expiry.as_secs();
        let signature = hex::encode(self.mac(method, key, expires).finalize().into_bytes());
        format!("{}/files/{}?expires={expires}&signature={signature}", self.base_url, key.as_str())
    }

    fn verify(&self, method: &str, key: &ArchiveKey, query: &str) -> Result<(), &'static str> {
        let mut expires = None;
        let mut signature = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("expires", value)) => expires = value.parse::<u64>().ok(),
                Some(("signature", value)) => signature = hex::decode(value).ok(),
                _ => {}
            }
        }
        let (Some(expires), Some(signature)) = (expires, signature) else {
            return Err("the URL is not signed");
        };
        self.mac(method, key, expires).verify_slice(&signature).map_err(|_| "the URL's signature does not match")?;
        if expires < unix_now() {
            return Err("the URL has expired");
        }
        Ok(())
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, content: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(content)?;
    file.sync_all()
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> io::Result<T> + Send + 'static) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(StoreError::Other(anyhow::Error::new(e).context("archive file operation"))),
        Err(join) => Err(StoreError::Other(join.into())),
    }
}
