//! Expiry and walks of the flow table: reclaiming an expired flow on insert into a full
//! table, the incremental [`FlowTable::sweep`], and the full or resumable walks
//! ([`FlowTable::retain`], [`FlowTable::for_each_mut`], [`FlowTable::scan`], [`FlowTable::iter`]).

use super::*;

impl<T: Copy> FlowTable<T> {
    /// Scans up to [`RECLAIM_SCAN`] records from the sweep cursor and reaps the first expired
    /// flow found. Returns whether one was.
    pub(super) fn reclaim_one(&mut self, now: u64, on_expired: &mut impl FnMut(FlowId, T)) -> bool {
        let n = self.records.len();
        for _ in 0..RECLAIM_SCAN.min(n) {
            let i = self.cursor;
            self.cursor = if i + 1 >= n { 0 } else { i + 1 };
            let rec = &self.records[i];
            if rec.gen & 1 == 1 && now >= rec.expires_at {
                let (id, v) = self.release(i);
                on_expired(id, v);
                return true;
            }
        }
        false
    }

    /// Incremental expiry: visits at most `budget` records from a cursor that wraps around the
    /// table, removes the flows among them that have expired (`now >= expires_at`) and passes
    /// each to `on_expired`. Returns how many were removed.
    ///
    /// Calling it with `budget = capacity / k` between bursts visits the whole table every `k`
    /// calls; removal is O(1) per flow.
    pub fn sweep(&mut self, now: u64, budget: usize, mut on_expired: impl FnMut(FlowId, T)) -> usize {
        let n = self.records.len();
        let mut removed = 0;
        for _ in 0..budget.min(n) {
            let i = self.cursor;
            self.cursor = if i + 1 >= n { 0 } else { i + 1 };
            let rec = &self.records[i];
            if rec.gen & 1 == 1 && now >= rec.expires_at {
                let (id, v) = self.release(i);
                on_expired(id, v);
                removed += 1;
            }
        }
        removed
    }

    /// Full walk: calls `keep` for every flow (expired or not) and removes those for which it
    /// returns false (e.g. all flows of a force-removed binding). Returns how many were removed.
    pub fn retain(&mut self, mut keep: impl FnMut(FlowId, &mut T) -> bool) -> usize {
        let mut removed = 0;
        for i in 0..self.records.len() {
            let rec = &mut self.records[i];
            if rec.gen & 1 == 1 {
                let id = FlowId { index: i as u32, gen: rec.gen };
                if !keep(id, &mut rec.value) {
                    self.release(i);
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Full walk: calls `f` with every flow (expired or not), its keys and deadline.
    pub fn for_each_mut(&mut self, mut f: impl FnMut(FlowEntry<'_, T>)) {
        for (i, rec) in self.records.iter_mut().enumerate() {
            if rec.gen & 1 == 1 {
                f(FlowEntry {
                    id: FlowId { index: i as u32, gen: rec.gen },
                    direction: Direction::Forward,
                    keys: &rec.keys,
                    expires_at: &mut rec.expires_at,
                    value: &mut rec.value,
                });
            }
        }
    }

    /// Visits the records from index `from` on, at most `budget` of them, and calls `f` for
    /// every flow among them (expired or not) with its `[forward, reverse]` keys, deadline and
    /// payload. Returns the index to go on from, or `None` once the end was reached.
    ///
    /// For walks spread over many calls (a flow listing between bursts): flows inserted or
    /// removed between two calls may be missed or seen.
    pub fn scan(&self, from: usize, budget: usize, mut f: impl FnMut(FlowId, &[FlowKey; 2], u64, &T)) -> Option<usize> {
        let end = from.saturating_add(budget).min(self.records.len());
        for (i, rec) in self.records.iter().enumerate().take(end).skip(from) {
            if rec.gen & 1 == 1 {
                f(FlowId { index: i as u32, gen: rec.gen }, &rec.keys, rec.expires_at, &rec.value);
            }
        }
        (end < self.records.len()).then_some(end)
    }

    /// Iterates over every flow (expired or not).
    pub fn iter(&self) -> impl Iterator<Item = (FlowId, &T)> + '_ {
        self.records
            .iter()
            .enumerate()
            .filter_map(|(i, rec)| (rec.gen & 1 == 1).then_some((FlowId { index: i as u32, gen: rec.gen }, &rec.value)))
    }
}
