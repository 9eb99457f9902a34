//! The flow table: a fixed-capacity slab of flows, a hash index, and intrusive
//! least-recently-used lists (one per timeout class) so that idle timeouts and eviction
//! are O(1) per packet: the flow that has been idle longest is always at a list's tail.

use std::collections::HashMap;
use std::hash::Hash;

/// Index of a flow in the slab.
pub type Slot = u32;
const NIL: Slot = u32::MAX;

/// Timeout classes, each with its own LRU list.
pub const LISTS: usize = 3;

#[derive(Debug)]
struct Node<T> {
    /// Boxed: a flow is large (its session record and parser state), and a slab of
    /// inline values would keep its peak capacity (rounded up to a power of two) for
    /// the rest of the run; boxed, memory follows the flows actually open.
    value: Option<Box<T>>,
    prev: Slot,
    next: Slot,
    list: usize,
    /// Time of the last packet (ns), for timeouts.
    last_ts: i64,
}

#[derive(Debug, Clone, Copy)]
struct List {
    head: Slot,
    tail: Slot,
}

/// A table of at most `capacity` values keyed by `K`.
#[derive(Debug)]
pub struct Table<K, T> {
    nodes: Vec<Node<T>>,
    free: Vec<Slot>,
    index: HashMap<K, Slot>,
    lists: [List; LISTS],
    capacity: usize,
}

impl<K: Hash + Eq + Clone, T> Table<K, T> {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Table {
            nodes: Vec::new(),
            free: Vec::new(),
            // Grown with the flows actually live, not sized for `capacity`: a sparse
            // index spread over megabytes costs a cache miss on every lookup.
            index: HashMap::with_capacity(capacity.min(1 << 10)),
            lists: [List {
                head: NIL,
                tail: NIL,
            }; LISTS],
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.index.len() >= self.capacity
    }

    pub fn lookup(&self, key: &K) -> Option<Slot> {
        self.index.get(key).copied()
    }

    pub fn get(&self, slot: Slot) -> Option<&T> {
        self.nodes
            .get(slot as usize)
            .and_then(|n| n.value.as_deref())
    }

    pub fn get_mut(&mut self, slot: Slot) -> Option<&mut T> {
        self.nodes
            .get_mut(slot as usize)
            .and_then(|n| n.value.as_deref_mut())
    }

    /// Inserts a value (the caller made room first). Returns its slot.
    pub fn insert(&mut self, key: K, value: T, list: usize, ts: i64) -> Slot {
        let value = Some(Box::new(value));
        let slot = match self.free.pop() {
            Some(s) => {
                self.nodes[s as usize] = Node {
                    value,
                    prev: NIL,
                    next: NIL,
                    list,
                    last_ts: ts,
                };
                s
            }
            None => {
                self.nodes.push(Node {
                    value,
                    prev: NIL,
                    next: NIL,
                    list,
                    last_ts: ts,
                });
                (self.nodes.len() - 1) as Slot
            }
        };
        self.index.insert(key, slot);
        self.push_front(slot, list);
        slot
    }

    /// Marks a flow as just used (moves it to the front of `list`).
    pub fn touch(&mut self, slot: Slot, list: usize, ts: i64) {
        self.unlink(slot);
        if let Some(n) = self.nodes.get_mut(slot as usize) {
            n.last_ts = n.last_ts.max(ts);
        }
        self.push_front(slot, list);
    }

    /// Removes a flow.
    pub fn remove(&mut self, slot: Slot, key: &K) -> Option<T> {
        let v = *self.nodes.get_mut(slot as usize)?.value.take()?;
        self.unlink(slot);
        if self.index.get(key) == Some(&slot) {
            self.index.remove(key);
        }
        self.free.push(slot);
        Some(v)
    }

    /// The least recently used flow of `list` with its last packet time.
    pub fn oldest(&self, list: usize) -> Option<(Slot, i64)> {
        let t = self.lists[list].tail;
        (t != NIL).then(|| (t, self.nodes[t as usize].last_ts))
    }

    /// The least recently used flow of all lists.
    pub fn oldest_any(&self) -> Option<Slot> {
        (0..LISTS)
            .filter_map(|l| self.oldest(l))
            .min_by_key(|&(_, ts)| ts)
            .map(|(s, _)| s)
    }

    /// Every occupied slot.
    pub fn slots(&self) -> Vec<Slot> {
        self.index.values().copied().collect()
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.nodes.iter().filter_map(|n| n.value.as_deref())
    }

    fn push_front(&mut self, slot: Slot, list: usize) {
        let head = self.lists[list].head;
        {
            let n = &mut self.nodes[slot as usize];
            n.prev = NIL;
            n.next = head;
            n.list = list;
        }
        if head != NIL {
            self.nodes[head as usize].prev = slot;
        } else {
            self.lists[list].tail = slot;
        }
        self.lists[list].head = slot;
    }

    fn unlink(&mut self, slot: Slot) {
        let Some(n) = self.nodes.get(slot as usize) else {
            return;
        };
        let (prev, next, list) = (n.prev, n.next, n.list);
        let linked = prev != NIL || next != NIL || self.lists[list].head == slot;
        if !linked {
            return;
        }
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        } else {
            self.lists[list].head = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        } else {
            self.lists[list].tail = prev;
        }
        let n = &mut self.nodes[slot as usize];
        n.prev = NIL;
        n.next = NIL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_order_and_removal() {
        let mut t: Table<u32, &str> = Table::new(3);
        let a = t.insert(1, "a", 0, 10);
        let b = t.insert(2, "b", 0, 20);
        let c = t.insert(3, "c", 1, 5);
        assert!(t.is_full());
        assert_eq!(t.oldest(0), Some((a, 10)));
        assert_eq!(t.oldest_any(), Some(c));
        t.touch(a, 0, 30);
        assert_eq!(t.oldest(0), Some((b, 20)));
        assert_eq!(t.remove(b, &2), Some("b"));
        assert_eq!(t.oldest(0), Some((a, 30)));
        assert_eq!(t.remove(c, &3), Some("c"));
        assert_eq!(t.oldest(1), None);
        let d = t.insert(4, "d", 1, 40);
        assert_eq!(t.get(d), Some(&"d"));
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup(&4), Some(d));
    }
}
