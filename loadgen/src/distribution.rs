//! Which record an operation touches: YCSB's request distributions, uniform, zipfian and latest.
//! Pure: every draw takes the caller's random number generator, so a seed replays a run.
//!
//! The zipfian generator is YCSB's (`ZipfianGenerator`, after Gray et al., "Quickly Generating
//! Billion-Record Synthetic Databases", SIGMOD 1994): rank 0 is the most popular and rank `i`
//! is drawn with probability `1 / ((i + 1)^theta * zeta(n, theta))`. As YCSB's
//! `requestdistribution=zipfian` does, the ranks are scrambled over the key space so the popular
//! records are not neighbours; here the scramble is a bijection of `0..n` (YCSB hashes ranks
//! modulo `n`, which merges some), so the top record's frequency is exactly `1 / zeta(n, theta)`.

/// YCSB's default zipfian constant.
pub const DEFAULT_THETA: f64 = 0.99;

/// A request distribution over the records `0..n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every record alike.
    Uniform,
    /// A few records hot, scattered over the key space (YCSB's scrambled zipfian).
    Zipfian,
    /// The newest records hot: zipfian over insertion order, newest first (YCSB's
    /// `SkewedLatestGenerator`).
    Latest,
}

/// `sum(1 / i^theta)` for `i` in `from + 1..=to`: a piece of the zeta function.
fn zeta_between(from: u64, to: u64, theta: f64) -> f64 {
    (from + 1..=to).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

/// YCSB's zipfian generator over ranks `0..items`; the item count may grow (for `Latest`),
/// and zeta grows with it incrementally, as in YCSB.
#[derive(Debug, Clone)]
pub struct Zipfian {
    items: u64,
    theta: f64,
    zeta_2: f64,
    zeta_n: f64,
    alpha: f64,
    eta: f64,
}

impl Zipfian {
    /// A generator over `items` ranks (at least 1) with skew `theta` (0 < theta < 1).
    pub fn new(items: u64, theta: f64) -> Zipfian {
        let items = items.max(1);
        let zeta_2 = zeta_between(0, 2, theta);
        let mut zipfian = Zipfian { items: 0, theta, zeta_2, zeta_n: 0.0, alpha: 1.0 / (1.0 - theta), eta: 0.0 };
        zipfian.grow_to(items);
        zipfian
    }

    fn grow_to(&mut self, items: u64) {
        if items <= self.items {
            return;
        }
        self.zeta_n += zeta_between(self.items, items, self.theta);
        self.items = items;
        self.eta = (1.0 - (2.0 / items as f64).powf(1.0 - self.theta)) / (1.0 - self.zeta_2 / self.zeta_n);
    }

    /// `zeta(items, theta)`: the most popular rank is drawn with probability `1 / zeta`.
    #[cfg(test)]
    pub fn zeta(&self) -> f64 {
        self.zeta_n
    }

    /// A rank in `0..items`, 0 the most popular.
    pub fn next(&self, rng: &mut fastrand::Rng) -> u64 {
        let u = rng.f64();
        let uz = u * self.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5_f64.powf(self.theta) {
            return 1.min(self.items - 1);
        }
        let rank = (self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        rank.min(self.items - 1)
    }

    /// A rank in `0..items`, after growing to `items` if that is more than now.
    pub fn next_of(&mut self, items: u64, rng: &mut fastrand::Rng) -> u64 {
        self.grow_to(items);
        self.next(rng)
    }
}

/// Draws record numbers for one workload.
#[derive(Debug, Clone)]
pub struct Chooser {
    kind: Kind,
    records: u64,
    zipfian: Zipfian,
    stride: u64,
}

impl Chooser {
    /// A chooser of `kind` over the `records` loaded records (at least 1).
    pub fn new(kind: Kind, records: u64, theta: f64) -> Chooser {
        let records = records.max(1);
        let zipfian = Zipfian::new(if kind == Kind::Uniform { 1 } else { records }, theta);
        Chooser { kind, records, zipfian, stride: stride_coprime_to(records) }
    }

    /// A record to read or update, when `existing` records (the loaded ones and every insert
    /// so far) exist. Uniform and zipfian choose among the loaded records, as YCSB does;
    /// latest among all, newest most often.
    pub fn next(&mut self, existing: u64, rng: &mut fastrand::Rng) -> u64 {
        match self.kind {
            Kind::Uniform => rng.u64(..self.records),
            Kind::Zipfian => self.scramble(self.zipfian.next(rng)),
            Kind::Latest => {
                let existing = existing.max(1);
                existing - 1 - self.zipfian.next_of(existing, rng)
            }
        }
    }

    /// The record of zipfian rank `rank`: a bijection of `0..records`.
    fn scramble(&self, rank: u64) -> u64 {
        let mixed = u128::from(rank) * u128::from(self.stride) + u128::from(SCRAMBLE_OFFSET);
        u64::try_from(mixed % u128::from(self.records)).expect("less than records")
    }
}

/// Added before the modulus, so rank 0 is not record 0.
const SCRAMBLE_OFFSET: u64 = 0x9e37_79b9_7f4a_7c15;

/// A large multiplier with no factor in common with `n`, so `rank * stride mod n` permutes
/// `0..n`.
fn stride_coprime_to(n: u64) -> u64 {
    let mut stride = (0x5851_f42d_4c95_7f2d % n.max(2)) | 1;
    while gcd(stride, n) != 1 {
        stride += 2;
    }
    stride
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Euler's constant gamma.
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

    /// Draws and counts, returning the counts by record, most frequent first.
    fn frequencies(chooser: &mut Chooser, existing: u64, draws: u64, seed: u64) -> Vec<(u64, u64)> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut counts: HashMap<u64, u64> = HashMap::new();
        for _ in 0..draws {
            *counts.entry(chooser.next(existing, &mut rng)).or_default() += 1;
        }
        let mut by_count: Vec<(u64, u64)> = counts.into_iter().collect();
        by_count.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        by_count
    }

    fn seed() -> u64 {
        let seed =
            std::env::var("LOADGEN_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
        println!("seed {seed} (replay with LOADGEN_TEST_SEED={seed})");
        seed
    }

    #[test]
    fn zeta_of_a_million_matches_the_closed_sum() {
        // zeta(10, 0.99), summed by hand: 1 + 1/2^0.99 + ... + 1/10^0.99.
        let by_hand: f64 = (1..=10).map(|i| 1.0 / f64::from(i).powf(0.99)).sum();
        assert!((Zipfian::new(10, 0.99).zeta() - by_hand).abs() < 1e-12);
        // Growing in steps gives the same zeta as computing it at once.
        let mut grown = Zipfian::new(1_000, 0.99);
        let mut rng = fastrand::Rng::with_seed(1);
        grown.next_of(1_000_000, &mut rng);
        let direct = Zipfian::new(1_000_000, 0.99);
        assert!((grown.zeta() - direct.zeta()).abs() < 1e-9, "{} vs {}", grown.zeta(), direct.zeta());
        // The Euler-Maclaurin estimate, n^(1-theta)/(1-theta) + zeta_Riemann(theta) with
        // zeta_Riemann(theta) ~ 1/(theta-1) + Euler's gamma, gives YCSB's published constant for
        // ten billion items (ScrambledZipfianGenerator's ZETAN, 26.46902820178302) to 1e-3, and
        // must give ours for a million.
        let estimate = |n: f64| n.powf(0.01) / 0.01 + 1.0 / (0.99 - 1.0) + EULER_GAMMA;
        assert!((estimate(1e10) - 26.469_028_201_783_02).abs() < 1e-3, "{}", estimate(1e10));
        assert!((direct.zeta() - estimate(1e6)).abs() < 1e-3, "zeta(1e6, 0.99) = {}", direct.zeta());
    }

    #[test]
    fn the_top_record_of_a_million_is_drawn_one_time_in_zeta() {
        let records = 1_000_000;
        let draws = 2_000_000;
        let mut chooser = Chooser::new(Kind::Zipfian, records, DEFAULT_THETA);
        let expected = 1.0 / chooser.zipfian.zeta();
        let by_count = frequencies(&mut chooser, records, draws, seed());
        let top = by_count[0].1 as f64 / draws as f64;
        // About 139,000 draws of the top record expected; 3% is more than 10 standard deviations.
        assert!((top - expected).abs() < expected * 0.03, "top record's frequency {top}, expected {expected}");
        // The second is drawn half as often as the first, to the power theta.
        let second = by_count[1].1 as f64 / draws as f64;
        let expected_second = expected / 2_f64.powf(DEFAULT_THETA);
        assert!(
            (second - expected_second).abs() < expected_second * 0.05,
            "second {second}, expected {expected_second}"
        );
        // Scrambled: the hot records are not the first ones.
        assert!(by_count[..10].iter().any(|(record, _)| *record > 1000), "{:?}", &by_count[..10]);
    }

    #[test]
    fn the_scramble_is_a_bijection() {
        for records in [1, 2, 3, 10, 97, 1000, 4096] {
            let chooser = Chooser::new(Kind::Zipfian, records, DEFAULT_THETA);
            let mut seen: Vec<u64> = (0..records).map(|rank| chooser.scramble(rank)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..records).collect::<Vec<_>>(), "{records} records");
        }
    }

    #[test]
    fn uniform_spreads_evenly() {
        let records = 100;
        let draws = 200_000;
        let by_count = frequencies(&mut Chooser::new(Kind::Uniform, records, DEFAULT_THETA), records, draws, seed());
        assert_eq!(by_count.len(), 100);
        let (most, least) = (by_count[0].1 as f64, by_count[99].1 as f64);
        assert!(most < 2_000.0 * 1.15 && least > 2_000.0 * 0.85, "most {most}, least {least}");
    }

    #[test]
    fn latest_favours_the_newest_record_and_follows_inserts() {
        let mut chooser = Chooser::new(Kind::Latest, 1_000, DEFAULT_THETA);
        let by_count = frequencies(&mut chooser, 1_000, 100_000, seed());
        assert_eq!(by_count[0].0, 999, "the newest record is the hottest: {:?}", &by_count[..5]);
        assert_eq!(by_count[1].0, 998);
        // After inserts, the new newest record is the hottest, and nothing past it is drawn.
        let by_count = frequencies(&mut chooser, 5_000, 100_000, seed());
        assert_eq!(by_count[0].0, 4_999);
        assert!(by_count.iter().all(|(record, _)| *record < 5_000));
    }
}
