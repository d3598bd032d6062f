//! Sharing equal lists between cached objects: caches that keep a record of every object in
//! the cluster see the same small lists (a pod's default tolerations, say) over and over.

use std::cell::RefCell;
use std::sync::Arc;
use std::thread::LocalKey;

/// The list last shared on this thread, per item type.
pub type LastShared<T> = LocalKey<RefCell<Option<Arc<[T]>>>>;

/// `items` as a shared list: the one made last on this thread (kept in `last`) when it is
/// equal, else a new one. Objects arrive in runs with equal lists, so the last one is enough.
pub fn shared<T: PartialEq + Clone>(last: &'static LastShared<T>, items: &[T]) -> Arc<[T]> {
    last.with_borrow_mut(|last| match last {
        Some(shared) if **shared == *items => shared.clone(),
        _ => last.insert(Arc::from(items)).clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static LAST: RefCell<Option<Arc<[String]>>> = const { RefCell::new(None) };
    }

    #[test]
    fn equal_lists_in_a_row_are_one_list() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let first = shared(&LAST, &list(&["a", "b"]));
        let second = shared(&LAST, &list(&["a", "b"]));
        assert!(Arc::ptr_eq(&first, &second));
        let other = shared(&LAST, &list(&["a"]));
        assert_eq!(*other, *list(&["a"]));
        assert!(!Arc::ptr_eq(&first, &other));
    }
}
