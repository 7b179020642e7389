//! The registry service: register, read and list, over two ports (an archive store and a row
//! store). It knows nothing of HTTP, Lambda or any cloud.

pub mod audit;
mod gated;
pub mod gc;
pub mod obsrv;
mod ports;
mod service;
mod stored_name;
mod uploads;

pub use audit::{AuditDraft, AuditOutbox, AuditRecord, AuditSink, Origin};
pub use gated::{Gate, GatedArchives, GatedRows, InFlightLimit, StoreCall};
pub use ports::StoredObject;
pub use ports::{
    ArchiveStore, Imported, ListPage, ListQuery, ListedRow, RowStore, Transitioned, render_read_view, staged_copy,
};
pub use service::{Catalog, ReadMode, Registered, Registrar, Registration, StagedUpload};
pub use stored_name::{ARCHIVE_PREFIX, ArchiveKey, StoredName, UPLOAD_PREFIX};
pub use uploads::{IncomingStore, UploadOutcome, register_upload};
