//! Sharing equal lists between cached objects: caches that keep a record of every object in
//! the cluster see the same small lists (a pod's default tolerations, say) over and over.

use std::cell::RefCell;
use std::sync::Arc;
use std::thread::LocalKey;

/// The values (lists, mostly) last shared on this thread, per type (most recent last).
pub type LastShared<T> = LocalKey<RefCell<Vec<Arc<T>>>>;

/// How many distinct values a thread remembers: pods of a few dozen workloads arriving
/// interleaved (each workload's pods carrying their own spread constraints, say) still share.
const REMEMBERED: usize = 64;

/// `items` as a shared list: an equal one made lately on this thread (kept in `last`), else a
/// new one, remembered in place of the one used longest ago.
pub fn shared<T: PartialEq + Clone>(last: &'static LastShared<[T]>, items: &[T]) -> Arc<[T]> {
    last.with_borrow_mut(|values| {
        recall(values, items).unwrap_or_else(|| remember(values, items.into()))
    })
}

/// `value` shared as `shared` shares lists.
pub fn shared_value<T: PartialEq>(last: &'static LastShared<T>, value: T) -> Arc<T> {
    last.with_borrow_mut(|values| {
        recall(values, &value).unwrap_or_else(|| remember(values, Arc::new(value)))
    })
}

/// An equal value among `values`, made the most recent.
fn recall<T: PartialEq + ?Sized>(values: &mut Vec<Arc<T>>, value: &T) -> Option<Arc<T>> {
    let at = values.iter().rposition(|known| **known == *value)?;
    let known = values.remove(at);
    values.push(known.clone());
    Some(known)
}

fn remember<T: ?Sized>(values: &mut Vec<Arc<T>>, value: Arc<T>) -> Arc<T> {
    if values.len() == REMEMBERED {
        values.remove(0);
    }
    values.push(value.clone());
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static LAST: RefCell<Vec<Arc<[String]>>> = const { RefCell::new(Vec::new()) };
        static LAST_NUMBER: RefCell<Vec<Arc<u32>>> = const { RefCell::new(Vec::new()) };
    }

    #[test]
    fn equal_values_are_one_value() {
        let seven = shared_value(&LAST_NUMBER, 7);
        let eight = shared_value(&LAST_NUMBER, 8);
        assert!(Arc::ptr_eq(&seven, &shared_value(&LAST_NUMBER, 7)));
        assert_eq!(*eight, 8);
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
        let again = shared(&LAST, &list(&["a", "b"]));
        assert!(Arc::ptr_eq(&first, &again), "interleaved lists still share");
    }

    #[test]
    fn a_list_used_longest_ago_is_forgotten_first() {
        let list = |i: usize| vec![i.to_string()];
        let first = shared(&LAST, &list(0));
        let second = shared(&LAST, &list(1));
        for i in 2..REMEMBERED {
            shared(&LAST, &list(i));
        }
        assert!(Arc::ptr_eq(&first, &shared(&LAST, &list(0))), "used again: now the newest");
        shared(&LAST, &list(REMEMBERED));
        let again = shared(&LAST, &list(1));
        assert_eq!(*again, *list(1));
        assert!(!Arc::ptr_eq(&second, &again), "the oldest was forgotten");
        assert!(Arc::ptr_eq(&first, &shared(&LAST, &list(0))));
    }
}
