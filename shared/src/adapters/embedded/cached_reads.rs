//! Read answers kept in memory: the rendered read views of the rows read lately, so that a
//! repeated read is a lookup and a copy instead of a database read, a decode and a render.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use serde_json::value::RawValue;

use crate::domain::Status;

/// Rendered read views by row id, up to a budget of bytes. The store that owns it is the only
/// writer of its database, so it sees every change and tells this one (`forget`).
pub(super) struct CachedReads {
    budget: usize,
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    by_id: HashMap<String, (Status, Arc<RawValue>)>,
    bytes: usize,
    /// Bumped by every `forget`: a view rendered from a read that began before a change is not
    /// kept after it.
    generation: u64,
}

impl CachedReads {
    pub(super) fn new(budget: usize) -> Self {
        Self { budget, state: RwLock::default() }
    }

    /// The kept view of row `id`, with the row's status.
    pub(super) fn get(&self, id: &str) -> Option<(Status, Arc<RawValue>)> {
        self.state.read().unwrap_or_else(PoisonError::into_inner).by_id.get(id).cloned()
    }

    /// Taken before reading the database, and handed to `keep` with what was read.
    pub(super) fn generation(&self) -> u64 {
        self.state.read().unwrap_or_else(PoisonError::into_inner).generation
    }

    /// Keeps a view read from the database, unless a change came since `generation` was taken
    /// (the view may predate it). Past the budget, the cached views are dropped and caching starts
    /// over: the rows read most lately come back first.
    pub(super) fn keep(&self, generation: u64, id: &str, status: Status, view: Arc<RawValue>) {
        let size = id.len() + view.get().len();
        if size > self.budget {
            return;
        }
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.generation != generation {
            return;
        }
        if state.bytes + size > self.budget {
            state.by_id.clear();
            state.bytes = 0;
        }
        if let Some((_, old)) = state.by_id.insert(id.to_owned(), (status, view)) {
            state.bytes -= id.len() + old.get().len();
        }
        state.bytes += size;
    }

    /// Drops the views of rows a commit may have changed. Called after every commit attempt,
    /// failed ones included, under the store's commit lock.
    pub(super) fn forget<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        for id in ids {
            if let Some((_, old)) = state.by_id.remove(id) {
                state.bytes -= id.len() + old.get().len();
            }
        }
        state.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(text: &str) -> Arc<RawValue> {
        Arc::from(RawValue::from_string(format!("\"{text}\"")).unwrap())
    }

    #[test]
    fn a_view_read_before_a_change_is_not_kept_after_it() {
        let kept = CachedReads::new(1024);
        let before = kept.generation();
        kept.forget(["a-1.0.0"]);
        kept.keep(before, "a-1.0.0", Status::Live, view("old"));
        assert!(kept.get("a-1.0.0").is_none());
        kept.keep(kept.generation(), "a-1.0.0", Status::Live, view("new"));
        assert_eq!(kept.get("a-1.0.0").unwrap().1.get(), "\"new\"");
    }

    #[test]
    fn forgetting_a_row_drops_its_view_and_its_bytes() {
        let kept = CachedReads::new(1024);
        kept.keep(0, "a-1.0.0", Status::Live, view("a"));
        kept.keep(0, "b-1.0.0", Status::Retired, view("b"));
        kept.forget(["a-1.0.0"]);
        assert!(kept.get("a-1.0.0").is_none());
        assert_eq!(kept.get("b-1.0.0").unwrap().0, Status::Retired);
        assert_eq!(kept.state.read().unwrap().bytes, "b-1.0.0".len() + 3);
    }

    #[test]
    fn past_the_budget_keeping_starts_over() {
        let kept = CachedReads::new(40);
        kept.keep(0, "a-1.0.0", Status::Live, view("0123456789"));
        kept.keep(0, "b-1.0.0", Status::Live, view("0123456789"));
        kept.keep(0, "c-1.0.0", Status::Live, view("0123456789"));
        assert!(kept.get("a-1.0.0").is_none(), "dropped when c came past the budget");
        assert!(kept.get("c-1.0.0").is_some());
        assert!(kept.state.read().unwrap().bytes <= 40);
        kept.keep(0, "big-1.0.0", Status::Live, view(&"x".repeat(64)));
        assert!(kept.get("big-1.0.0").is_none(), "a view over the whole budget is never kept");
        assert!(kept.get("c-1.0.0").is_some());
    }
}
