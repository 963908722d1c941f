//! Wake-ups by key, for the async service: each subscription and each handler future is polled with a waker
//! of its own, which records its key before it wakes the task. A poll of `run` then looks only at what was
//! woken, so a wake-up costs what arrived rather than a look at every subscription and every handler.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Wake, Waker};

/// A subscription's key: `slot << 1 | SUB`.
pub(crate) const SUB: usize = 0;
/// A handler's key: `slot << 1 | HANDLER`.
pub(crate) const HANDLER: usize = 1;

/// The kind (`SUB` or `HANDLER`) and slot of a key.
pub(crate) fn split(key: usize) -> (usize, usize) {
    (key & 1, key >> 1)
}

#[derive(Default)]
struct Ready {
    /// Keys woken since the task last took them, each once.
    keys: Vec<usize>,
    /// `queued[key]`: the key is in `keys`.
    queued: Vec<bool>,
    /// The task polling `run` (the last one to poll, when several do).
    task: Option<Waker>,
}

/// The keys woken, and the task to wake for them.
#[derive(Default)]
pub(crate) struct Wakeups {
    ready: Mutex<Ready>,
}

impl Wakeups {
    fn ready(&self) -> MutexGuard<'_, Ready> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `task` as the one to wake, and moves the keys woken since the last call into `into`. A key
    /// woken again from now on (even while its owner is being polled) is recorded again.
    pub(crate) fn take(&self, task: &Waker, into: &mut Vec<usize>) {
        let mut ready = self.ready();
        if !ready.task.as_ref().is_some_and(|t| t.will_wake(task)) {
            ready.task = Some(task.clone());
        }
        let Ready { keys, queued, .. } = &mut *ready;
        for &key in keys.iter() {
            queued[key] = false;
        }
        into.append(keys);
    }

    /// Records `key` and wakes the task.
    pub(crate) fn wake(&self, key: usize) {
        let mut ready = self.ready();
        if ready.queued.len() <= key {
            ready.queued.resize(key + 1, false);
        }
        if std::mem::replace(&mut ready.queued[key], true) {
            // Recorded already: the task was woken for it and has not taken it yet.
            return;
        }
        ready.keys.push(key);
        let task = ready.task.take();
        drop(ready);
        // Taken, not cloned: until the task polls and registers again, it is due to run anyway.
        if let Some(task) = task {
            task.wake();
        }
    }

    /// Wakes the task with no key (something else changed: a stop).
    pub(crate) fn wake_task(&self) {
        let task = self.ready().task.take();
        if let Some(task) = task {
            task.wake();
        }
    }
}

struct KeyWaker {
    key: usize,
    wakeups: Arc<Wakeups>,
}

impl Wake for KeyWaker {
    fn wake(self: Arc<Self>) {
        self.wakeups.wake(self.key);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakeups.wake(self.key);
    }
}

enum Entry<T> {
    Free,
    Here(T),
    /// Taken out to be polled without the runner's lock; `woken` when its key came up meanwhile.
    Out {
        woken: bool,
    },
}

/// Items under stable keys, each with its waker (made once per slot, reused by the items that follow).
pub(crate) struct Slots<T> {
    kind: usize,
    wakeups: Arc<Wakeups>,
    entries: Vec<(Entry<T>, Waker)>,
    free: Vec<usize>,
    /// Entries `Here` or `Out`.
    live: usize,
}

impl<T> Slots<T> {
    pub(crate) fn new(kind: usize, wakeups: Arc<Wakeups>) -> Self {
        Self { kind, wakeups, entries: vec![], free: vec![], live: 0 }
    }

    /// The key of `slot`.
    pub(crate) fn key(&self, slot: usize) -> usize {
        slot << 1 | self.kind
    }

    /// Items held, out or not.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    fn occupy(&mut self, entry: Entry<T>) -> usize {
        self.live += 1;
        if let Some(slot) = self.free.pop() {
            self.entries[slot].0 = entry;
            return slot;
        }
        let key = self.key(self.entries.len());
        let waker = Waker::from(Arc::new(KeyWaker { key, wakeups: self.wakeups.clone() }));
        self.entries.push((entry, waker));
        self.entries.len() - 1
    }

    /// Stores `item`; returns its slot.
    pub(crate) fn insert(&mut self, item: T) -> usize {
        self.occupy(Entry::Here(item))
    }

    /// A slot for an item that is out being polled already.
    pub(crate) fn reserve(&mut self) -> usize {
        self.occupy(Entry::Out { woken: false })
    }

    /// The item in `slot`, if there, and the slot's waker.
    pub(crate) fn get_mut(&mut self, slot: usize) -> Option<(&mut T, &Waker)> {
        match self.entries.get_mut(slot) {
            Some((Entry::Here(item), waker)) => Some((item, waker)),
            _ => None,
        }
    }

    /// The slot's waker.
    pub(crate) fn waker(&self, slot: usize) -> &Waker {
        &self.entries[slot].1
    }

    /// The items there (not those out).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().filter_map(|(e, _)| match e {
            Entry::Here(item) => Some(item),
            _ => None,
        })
    }

    /// Frees `slot`, returning its item if it was there.
    pub(crate) fn remove(&mut self, slot: usize) -> Option<T> {
        let entry = self.entries.get_mut(slot)?;
        match std::mem::replace(&mut entry.0, Entry::Free) {
            Entry::Free => None,
            Entry::Here(item) => {
                self.live -= 1;
                self.free.push(slot);
                Some(item)
            }
            Entry::Out { .. } => {
                self.live -= 1;
                self.free.push(slot);
                None
            }
        }
    }

    /// Takes the item out of `slot` to poll it; `None` if the slot is free, or out already (then marked woken
    /// for whoever has it).
    pub(crate) fn take_out(&mut self, slot: usize) -> Option<T> {
        let entry = &mut self.entries.get_mut(slot)?.0;
        match std::mem::replace(entry, Entry::Out { woken: false }) {
            Entry::Here(item) => Some(item),
            Entry::Out { .. } => {
                *entry = Entry::Out { woken: true };
                None
            }
            Entry::Free => {
                *entry = Entry::Free;
                None
            }
        }
    }

    /// Puts an item taken out (with [`take_out`](Self::take_out) or [`reserve`](Self::reserve)) back; true
    /// if its key was woken meanwhile (poll it again).
    pub(crate) fn put_back(&mut self, slot: usize, item: T) -> bool {
        let entry = &mut self.entries[slot].0;
        let Entry::Out { woken } = *entry else { unreachable!("only an item out is put back") };
        *entry = Entry::Here(item);
        woken
    }

    /// Takes every item there (those out stay out).
    pub(crate) fn drain(&mut self) -> Vec<T> {
        let mut items = vec![];
        for (slot, (entry, _)) in self.entries.iter_mut().enumerate() {
            if matches!(entry, Entry::Here(_)) {
                if let Entry::Here(item) = std::mem::replace(entry, Entry::Free) {
                    items.push(item);
                    self.free.push(slot);
                    self.live -= 1;
                }
            }
        }
        items
    }
}
