//! Weighted round robin (`wrr`, the kernel's `ip_vs_wrr.c`): interleaved.
//!
//! The state is the kernel's mark: the list position of the server chosen last, the
//! current weight `cw`, the maximum `mw` and the step `di`. `di` is the greatest common
//! divisor of the positive weights (1 when there is none) and `mw` is the largest weight
//! less `di - 1`, so that the last pass of a cycle asks for weight 1. Walking the list
//! from the position, a server is chosen when it is available (not overloaded, weight
//! above 0) and its weight is at least `cw`; at the end of the list `cw` drops by `di`,
//! and when it reaches 0 or less it starts again at `mw`. With weights 4, 3, 2 a cycle is
//! `A A B A B C A B C`: every server appears `weight / gcd` times per cycle of
//! `sum(weight) / gcd` connections, spread out rather than in bursts.
//!
//! The search stops, as the kernel's does, once every server has been tried at weight 1
//! (the last pass), so an all-overloaded list gives `None` without walking the list more
//! than twice. The gcd and the maximum count every server of positive weight, overloaded
//! ones included, as the kernel's do.
//!
//! [`Scheduler::update`] does what the kernel does on every added, edited or removed
//! server (`ip_vs_wrr_dest_changed`): the position goes back to the head of the list,
//! `di` and `mw` are recomputed, and `cw` is kept where it was when it still fits (reset
//! to `mw` when above it or 0, otherwise rounded to the pass grid `k * di + 1`).
//!
//! ## Guarantees and complexity
//! - Scheduling ([`Wrr::schedule`]): O(n) in the number of servers, whatever the
//!   weights: passes that cannot find a server (`cw` above the largest available
//!   weight) are stepped over in O(1), giving the same choice and the same state as
//!   walking them (the kernel walks them: O(n * max weight / gcd) in the worst case).
//!   The largest available weight is learnt from the first such pass, which is walked
//!   once, not scanned for on every call: a search that chooses a server costs only the
//!   servers it walks, as in the kernel (amortised O(1) for similar weights).
//!   No allocation, no panic; `None` only when no server is available.
//! - Updating ([`Wrr::update`]): O(n).

use super::{Dests, SchedInput, Scheduler};
use crate::service::DestId;

/// The weighted round-robin scheduler (`wrr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Wrr {
    /// List position of the server chosen last; `None` is the list head.
    pos: Option<usize>,
    /// Current weight: the weight a server needs to be chosen in this pass.
    cw: i64,
    /// Maximum weight less `di - 1`; 0 when every weight is 0.
    mw: i64,
    /// Step: the gcd of the positive weights, or 1.
    di: i64,
}

/// Upper bound on the rounds of the search loop. Each round walks (or steps over) the
/// list once and lowers `cw`; with the O(1) stepping over of empty passes a search takes
/// at most a handful of rounds (one partial walk, at most three descents of `cw`, each a
/// jump, one empty pass and a wrap), so the bound is never reached; it only makes the
/// loop bounded by construction.
const MAX_ROUNDS: usize = 32;

fn gcd(mut a: u32, mut b: u32) -> u32 {
    // Euclid: the remainder strictly decreases, so at most ~47 rounds for u32.
    while b != 0 {
        let r = a % b;
        a = b;
        b = r;
    }
    a
}

impl Wrr {
    /// A weighted round-robin scheduler with no servers yet (the first
    /// [`Scheduler::update`] sets `cw` to the maximum weight).
    pub const fn new() -> Self {
        Wrr {
            pos: None,
            cw: 0,
            mw: 0,
            di: 1,
        }
    }
}

impl Default for Wrr {
    fn default() -> Self {
        Self::new()
    }
}

impl Scheduler for Wrr {
    fn name(&self) -> &'static str {
        "wrr"
    }

    fn update(&mut self, dests: Dests<'_>) {
        let mut g = 0u32;
        let mut max = 0u32;
        for (_, d) in dests.iter() {
            if d.weight > 0 {
                g = if g > 0 { gcd(d.weight, g) } else { d.weight };
            }
            max = max.max(d.weight);
        }
        self.pos = None;
        self.di = if g > 0 { i64::from(g) } else { 1 };
        self.mw = i64::from(max) - (self.di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    fn schedule(&mut self, dests: Dests<'_>, _input: &SchedInput) -> Option<DestId> {
        if self.mw == 0 {
            lvs_trace!("wrr: no destination available");
            return None;
        }
        let (table, members) = dests.parts();
        let n = members.len();
        // The largest weight among available servers (0 if none), once known: a pass
        // from the head with `cw` above it finds nothing, so it need not be walked. It is
        // not scanned for up front: most searches choose a server before they need it.
        // A walk from the head that completes without a choice has seen every server,
        // and learns it then (see below).
        let mut max_avail: Option<i64> = None;

        // The kernel's search, round by round. `cur` is where the walk resumes (`None`:
        // the head), `last` where this search started, `stop` the position at which the
        // final pass gives up.
        let last = self.pos;
        let mut cur = self.pos;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        for _ in 0..MAX_ROUNDS {
            let from_head = cur.is_none();
            // Whether this round is a whole pass from the head that chooses nothing and
            // stops nowhere, with the largest available weight.
            let mut empty_pass: Option<i64> = None;
            if let Some(max_avail) = max_avail.filter(|&m| from_head && self.cw > m) {
                // A whole pass that chooses nothing.
                if let Some(s) = stop.filter(|&s| s < n) {
                    // It would reach `stop` and give up there.
                    self.pos = Some(s);
                    lvs_trace!("wrr: no destination available");
                    return None;
                }
                empty_pass = Some(max_avail);
            } else {
                let begin = match cur {
                    Some(p) => p.saturating_add(1),
                    None => 0,
                };
                // The largest available weight among the servers walked.
                let mut seen = 0i64;
                let rest = members.get(begin..).unwrap_or(&[]);
                for (p, &id) in (begin..).zip(rest) {
                    if let Some(d) = super::not_overloaded(table, id) {
                        // Available: not overloaded, weight above 0.
                        let w = i64::from(d.weight);
                        if w > 0 && w >= self.cw {
                            self.pos = Some(p);
                            lvs_trace!("wrr: server {} weight {} cw {}", id, d.weight, self.cw);
                            return Some(id);
                        }
                        seen = seen.max(w);
                    }
                    if stop == Some(p) {
                        self.pos = Some(p);
                        lvs_trace!("wrr: no destination available");
                        return None;
                    }
                }
                if from_head {
                    // A whole pass: every server walked, none chosen, none stopped at;
                    // `seen` is the largest available weight. If `cw` is above it, this
                    // is the pass the branch above steps over once the weight is known
                    // (walking it changed nothing), so the stepping below is the same.
                    max_avail = Some(seen);
                    empty_pass = Some(seen).filter(|&m| self.cw > m);
                }
            }
            if let Some(max_avail) = empty_pass {
                // Step over the passes whose `cw` stays above both `di` and `max_avail`:
                // none of them chooses, wraps or changes `last_pass` or `stop`.
                let floor = self.di.max(max_avail);
                if self.cw > floor {
                    let k = (self.cw - floor - 1).checked_div(self.di).unwrap_or(0);
                    self.cw -= k * self.di;
                }
            }
            // End of the list: lower the current weight.
            cur = None;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                // Give up once every server was tried at weight 1: either a last pass
                // was made, or this search started at the head (its first walk covered
                // the whole list).
                if last_pass || last.is_none() {
                    self.pos = None;
                    lvs_trace!("wrr: no destination available");
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                // The first walk at weight 1 covered only the servers after `last`;
                // this one covers the rest, up to `last`.
                stop = last;
            }
        }
        // Not reached (see MAX_ROUNDS); behave as a failed search.
        self.pos = None;
        None
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sched::testutil::{arb_dests, arb_weight, input, table};
    use crate::service::RealServer;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn run(s: &mut Wrr, t: &[Option<RealServer>], m: &[DestId], k: usize) -> Vec<Option<DestId>> {
        (0..k)
            .map(|_| s.schedule(Dests::new(t, m), &input(1, 1, 0)))
            .collect()
    }

    fn fresh(t: &[Option<RealServer>], m: &[DestId]) -> Wrr {
        let mut s = Wrr::new();
        s.update(Dests::new(t, m));
        s
    }

    /// The kernel's loop walked pass by pass, with no stepping over: the reference the
    /// fast path must agree with.
    fn reference(s: &mut Wrr, dests: Dests<'_>) -> Option<DestId> {
        if s.mw == 0 {
            return None;
        }
        let n = dests.len();
        let last = s.pos;
        let mut cur = s.pos;
        let (mut stop, mut last_pass, mut restarted) = (None, false, false);
        loop {
            let begin = cur.map_or(0, |p| p + 1);
            for p in begin..n {
                if let Some((id, d)) = dests.get(p)
                    && !d.overloaded
                    && i64::from(d.weight) >= s.cw
                {
                    s.pos = Some(p);
                    return Some(id);
                }
                if stop == Some(p) {
                    s.pos = Some(p);
                    return None;
                }
            }
            cur = None;
            s.cw -= s.di;
            if s.cw <= 0 {
                s.cw = s.mw;
                if last_pass || last.is_none() {
                    s.pos = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = s.cw <= s.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }

    /// `schedule` as it was before the largest available weight was learnt from the
    /// walk: scanned for up front on every call. The reference for the state and the
    /// choices, with huge weights too (it steps over empty passes as `schedule` does).
    fn scan_up_front(w: &mut Wrr, dests: Dests<'_>) -> Option<DestId> {
        if w.mw == 0 {
            return None;
        }
        let n = dests.len();
        // The largest weight among available servers: a pass from the head with `cw`
        // above it finds nothing, so it need not be walked.
        let max_avail = dests
            .iter()
            .filter(|(_, d)| d.is_available())
            .map(|(_, d)| i64::from(d.weight))
            .max()
            .unwrap_or(0);

        // The kernel's search, round by round. `cur` is where the walk resumes (`None`:
        // the head), `last` where this search started, `stop` the position at which the
        // final pass gives up.
        let last = w.pos;
        let mut cur = w.pos;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        for _ in 0..MAX_ROUNDS {
            let from_head = cur.is_none();
            if from_head && w.cw > max_avail {
                // A whole pass that chooses nothing.
                if let Some(s) = stop.filter(|&s| s < n) {
                    // It would reach `stop` and give up there.
                    w.pos = Some(s);
                    return None;
                }
                // Step over the passes whose `cw` stays above both `di` and `max_avail`:
                // none of them chooses, wraps or changes `last_pass` or `stop`.
                let floor = w.di.max(max_avail);
                if w.cw > floor {
                    let k = (w.cw - floor - 1).checked_div(w.di).unwrap_or(0);
                    w.cw -= k * w.di;
                }
            } else {
                let begin = match cur {
                    Some(p) => p.saturating_add(1),
                    None => 0,
                };
                for p in begin..n {
                    if let Some((id, d)) = dests.get(p)
                        && d.is_available()
                        && i64::from(d.weight) >= w.cw
                    {
                        w.pos = Some(p);
                        return Some(id);
                    }
                    if stop == Some(p) {
                        w.pos = Some(p);
                        return None;
                    }
                }
            }
            // End of the list: lower the current weight.
            cur = None;
            w.cw -= w.di;
            if w.cw <= 0 {
                w.cw = w.mw;
                // Give up once every server was tried at weight 1: either a last pass
                // was made, or this search started at the head (its first walk covered
                // the whole list).
                if last_pass || last.is_none() {
                    w.pos = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = w.cw <= w.di;
            if last_pass && restarted && last.is_some() {
                // The first walk at weight 1 covered only the servers after `last`;
                // this one covers the rest, up to `last`.
                stop = last;
            }
        }
        // Not reached (see MAX_ROUNDS); behave as a failed search.
        w.pos = None;
        None
    }

    #[test]
    fn test_interleaved_4_3_2() {
        let (t, m) = table(&[4, 3, 2]);
        let mut s = fresh(&t, &m);
        assert_eq!(s.name(), "wrr");
        let cycle = [0, 0, 1, 0, 1, 2, 0, 1, 2];
        let got = run(&mut s, &t, &m, 18);
        let want: Vec<_> = cycle.iter().chain(&cycle).map(|&i| Some(i)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn test_interleaved_5_1_1() {
        let (t, m) = table(&[5, 1, 1]);
        let mut s = fresh(&t, &m);
        let cycle = [0, 0, 0, 0, 0, 1, 2];
        let got = run(&mut s, &t, &m, 14);
        let want: Vec<_> = cycle.iter().chain(&cycle).map(|&i| Some(i)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn test_default_is_new() {
        assert_eq!(Wrr::default(), Wrr::new());
        assert_eq!(Wrr::new().di, 1);
    }

    #[test]
    fn test_gcd_steps() {
        // gcd 2: weights 4, 2 behave as 2, 1; mw = 4 - 1 = 3.
        let (t, m) = table(&[4, 2]);
        let mut s = fresh(&t, &m);
        assert_eq!((s.di, s.mw, s.cw), (2, 3, 3));
        assert_eq!(run(&mut s, &t, &m, 6), [0, 0, 1, 0, 0, 1].map(Some));
    }

    #[test]
    fn test_weight_zero_and_overloaded_skipped() {
        // B has weight 0, C (the heaviest) is overloaded: A and D share 3:2.
        let (mut t, m) = table(&[3, 0, 6, 2]);
        t[2].as_mut().unwrap().overloaded = true;
        let mut s = fresh(&t, &m);
        let got = run(&mut s, &t, &m, 50);
        assert!(got.iter().all(|g| matches!(g, Some(0) | Some(3))));
        let a = got.iter().filter(|g| **g == Some(0)).count();
        // The gcd and mw still count C (as the kernel's do): a cycle is 6 passes
        // (cw 6..1) giving A three times and D twice.
        let (t2, m2) = table(&[3, 2]);
        let mut s2 = fresh(&t2, &m2);
        let got2: Vec<_> = run(&mut s2, &t2, &m2, 50)
            .iter()
            .map(|g| g.map(|i| if i == 1 { 3 } else { i }))
            .collect();
        assert_eq!(got, got2);
        assert_eq!(a, 30);
    }

    #[test]
    fn test_all_weights_zero_or_unavailable() {
        let (t, m) = table(&[0, 0, 0]);
        let mut s = fresh(&t, &m);
        assert_eq!(s.mw, 0);
        assert_eq!(run(&mut s, &t, &m, 2), [None, None]);
        let (t, m) = table(&[]);
        let mut s = fresh(&t, &m);
        assert_eq!(run(&mut s, &t, &m, 1), [None]);
        let (mut t, m) = table(&[2, 3]);
        for d in t.iter_mut().flatten() {
            d.overloaded = true;
        }
        let mut s = fresh(&t, &m);
        assert_eq!(run(&mut s, &t, &m, 2), [None, None]);
        // Unconfigured (no update yet): None.
        assert_eq!(
            Wrr::new().schedule(Dests::new(&t, &m), &input(1, 1, 0)),
            None
        );
    }

    #[test]
    fn test_overload_mid_cycle_then_recovery() {
        let (mut t, m) = table(&[4, 3, 2]);
        let mut s = fresh(&t, &m);
        assert_eq!(run(&mut s, &t, &m, 3), [0, 0, 1].map(Some));
        t[0].as_mut().unwrap().overloaded = true;
        t[1].as_mut().unwrap().overloaded = true;
        // Only C: chosen whatever cw is, after walking down to its weight.
        assert_eq!(run(&mut s, &t, &m, 3), [2, 2, 2].map(Some));
        t[0].as_mut().unwrap().overloaded = false;
        t[1].as_mut().unwrap().overloaded = false;
        let mut r = s;
        for _ in 0..20 {
            let want = reference(&mut r, Dests::new(&t, &m));
            assert_eq!(s.schedule(Dests::new(&t, &m), &input(1, 1, 0)), want);
            assert_eq!(s, r);
        }
    }

    #[test]
    fn test_update_as_the_kernel() {
        let (mut t, m) = table(&[4, 3, 2]);
        let mut s = fresh(&t, &m);
        run(&mut s, &t, &m, 4);
        assert_eq!((s.pos, s.cw), (Some(0), 2));
        // An edit keeps cw (it fits) and resets the position to the head.
        t[2].as_mut().unwrap().weight = 1;
        s.update(Dests::new(&t, &m));
        assert_eq!((s.pos, s.cw, s.mw, s.di), (None, 2, 4, 1));
        // gcd 2 now: cw snaps to the grid k * di + 1.
        let (t, m) = table(&[8, 6]);
        s.cw = 4;
        s.update(Dests::new(&t, &m));
        assert_eq!((s.cw, s.mw, s.di), (5, 7, 2));
        // cw above the new mw: reset to mw.
        let (t, m) = table(&[2]);
        s.update(Dests::new(&t, &m));
        assert_eq!((s.cw, s.mw, s.di), (1, 1, 2));
        let (t, m) = table(&[0]);
        s.update(Dests::new(&t, &m));
        assert_eq!((s.cw, s.mw, s.di), (0, 0, 1));
    }

    #[test]
    fn test_huge_weights_are_fast() {
        // One available server of weight 1 beside an overloaded one of u32::MAX: the
        // kernel walks ~4e9 empty passes per connection; this steps over them.
        let (mut t, m) = table(&[u32::MAX, 1]);
        t[0].as_mut().unwrap().overloaded = true;
        let mut s = fresh(&t, &m);
        assert_eq!(run(&mut s, &t, &m, 3), [1, 1, 1].map(Some));
        assert_eq!(s.cw, 1);
        // Everything overloaded: None, quickly, and the state is the kernel's.
        t[1].as_mut().unwrap().overloaded = true;
        assert_eq!(run(&mut s, &t, &m, 2), [None, None]);
        t[0].as_mut().unwrap().overloaded = false;
        assert_eq!(run(&mut s, &t, &m, 2), [0, 0].map(Some));
    }

    proptest! {
        #[test]
        fn prop_cycle_gives_weight_over_gcd(ws in proptest::collection::vec(0u32..20, 1..8)) {
            let (t, m) = table(&ws);
            let g = ws
                .iter()
                .fold(0, |g, &w| if w == 0 { g } else if g == 0 { w } else { gcd(g, w) });
            let mut s = fresh(&t, &m);
            if g == 0 {
                prop_assert_eq!(run(&mut s, &t, &m, 1), [None]);
                return Ok(());
            }
            let total: u32 = ws.iter().map(|w| w / g).sum();
            for _ in 0..2 {
                let mut count = std::vec![0u32; ws.len()];
                for got in run(&mut s, &t, &m, total as usize) {
                    count[got.unwrap() as usize] += 1;
                }
                let want: Vec<u32> = ws.iter().map(|w| w / g).collect();
                prop_assert_eq!(count, want);
            }
        }

        #[test]
        fn prop_matches_the_kernel_loop(
            ws in proptest::collection::vec((0u32..12, any::<bool>()), 0..8),
            flips in proptest::collection::vec(
                (0usize..8, any::<bool>(), 0u32..36, any::<bool>()),
                0..30,
            ),
            factor in 1u32..4,
        ) {
            let weights: Vec<u32> = ws.iter().map(|w| w.0 * factor).collect();
            let (mut t, m) = table(&weights);
            for (slot, w) in t.iter_mut().zip(&ws) {
                slot.as_mut().unwrap().overloaded = w.1;
            }
            let mut s = fresh(&t, &m);
            let mut r = s;
            for (i, flip, w, upd) in flips {
                let want = reference(&mut r, Dests::new(&t, &m));
                let got = s.schedule(Dests::new(&t, &m), &input(1, 1, 0));
                prop_assert_eq!(got, want);
                prop_assert_eq!(s, r);
                if let Some(got) = got {
                    prop_assert!(t[got as usize].unwrap().is_available());
                }
                if let Some(Some(d)) = t.get_mut(i) {
                    if flip {
                        d.overloaded = !d.overloaded;
                    }
                    if w % 3 == 0 {
                        // A weight edit, followed by update as the director does, or
                        // not (the kernel races with edits too).
                        d.weight = (w / 3) * factor;
                        if upd {
                            s.update(Dests::new(&t, &m));
                            r.update(Dests::new(&t, &m));
                        }
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn prop_same_as_scan_up_front(
            (t, m) in arb_dests(),
            ops in proptest::collection::vec(
                (0usize..12, any::<bool>(), arb_weight(), 0u8..4, 1usize..4),
                0..30,
            ),
        ) {
            let mut t = t;
            let mut s = fresh(&t, &m);
            let mut r = s;
            for (i, flip, w, kind, calls) in ops {
                for _ in 0..calls {
                    let want = scan_up_front(&mut r, Dests::new(&t, &m));
                    let got = s.schedule(Dests::new(&t, &m), &input(1, 1, 0));
                    prop_assert_eq!(got, want);
                    prop_assert_eq!(s, r);
                }
                if let Some(Some(d)) = t.get_mut(i) {
                    if flip {
                        d.overloaded = !d.overloaded;
                    }
                    // A weight edit followed by update, as the director does, or not.
                    if kind < 2 {
                        d.weight = w;
                    }
                    if kind == 0 {
                        s.update(Dests::new(&t, &m));
                        r.update(Dests::new(&t, &m));
                    }
                }
            }
        }
    }
}
