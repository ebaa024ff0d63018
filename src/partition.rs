//! Which global rows each rank owns: the N-invariant batch plan.
//!
//! Rows are ordered globally. Global batch `t` (of every epoch) is rows `[tB, min((t+1)B, n))`,
//! and inside it rank `r` owns one contiguous slice ([`block`]): shares differ by at most one
//! row. So the set of rows in batch `t` does not depend on the number of ranks P, and a run on
//! P ranks computes the same sums as a run on one rank, in a different order.
//!
//! ```text
//!  n = 10, B = 4, P = 3        batch 0         batch 1         batch 2 (short)
//!  global rows            | 0  1 | 2 | 3 | 4  5 | 6 | 7 |  8  |  9  |  -  |
//!  owner rank             | r0   | r1| r2| r0   | r1| r2|  r0 |  r1 | (r2 owns none)
//! ```
//!
//! With a grain of g rows (`--reproducible`), a batch is cut into blocks of g rows (the last one
//! may be short) and ranks own contiguous runs of whole blocks instead of rows: a block is the
//! same rows whatever P, so its gradient is the same bits on whichever rank computes it.
//!
//! A rank stores its rows batch after batch, so its slice of batch `t` is one contiguous range
//! of its local array ([`BatchPlan::local_batch`]). Pure arithmetic, no MPI: unit-tested for
//! every rank of many sizes in one process.

use std::ops::Range;

/// Contiguous block distribution of `n` items over `parts` parts: part `index` gets
/// `n / parts` items, plus one if `index < n % parts`.
pub fn block(n: usize, parts: usize, index: usize) -> Range<usize> {
    let base = n / parts;
    let extra = n % parts;
    let start = index * base + index.min(extra);
    let len = base + usize::from(index < extra);
    start..start + len
}

/// A rank's rows in local order: `count` blocks of `block` rows, `stride` rows apart from
/// `first` on (HDF5's strided hyperslab), then the rows of `tail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowPattern {
    pub first: usize,
    pub stride: usize,
    pub count: usize,
    pub block: usize,
    pub tail: Range<usize>,
}

/// The cutting of `samples` training rows into global batches of `batch` rows shared by
/// `ranks` ranks, in blocks of `grain` rows. Construct with [`BatchPlan::new`] or
/// [`BatchPlan::in_blocks`], which check the sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPlan {
    samples: usize,
    batch: usize,
    ranks: usize,
    grain: usize,
}

/// Why a batch plan cannot be made; each message names the option to change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("--samples must be at least 1")]
    NoSamples,
    #[error("--batch ({batch}) must be at least the number of ranks ({ranks}): every rank needs a row of every full batch; use a larger --batch or fewer ranks")]
    BatchBelowRanks { batch: usize, ranks: usize },
    #[error("--reproducible cuts each batch of {batch} rows into {blocks} blocks of {grain} rows, fewer than the ranks ({ranks}): every rank needs a block of every full batch; use --block-rows {fits} or less, or a larger --batch")]
    BlocksBelowRanks {
        batch: usize,
        blocks: usize,
        grain: usize,
        ranks: usize,
        fits: usize,
    },
    #[error("--batch ({batch}) is larger than --samples ({samples}); use --batch <= --samples")]
    BatchAboveSamples { batch: usize, samples: usize },
}

impl BatchPlan {
    #[cfg(test)]
    pub fn new(samples: usize, batch: usize, ranks: usize) -> Result<Self, PlanError> {
        Self::in_blocks(samples, batch, ranks, 1)
    }

    /// A plan whose ranks own whole blocks of `grain` rows of each batch.
    pub fn in_blocks(
        samples: usize,
        batch: usize,
        ranks: usize,
        grain: usize,
    ) -> Result<Self, PlanError> {
        assert!(grain > 0, "a block holds at least one row");
        if samples == 0 {
            return Err(PlanError::NoSamples);
        }
        if batch < ranks.max(1) {
            return Err(PlanError::BatchBelowRanks { batch, ranks });
        }
        if batch > samples {
            return Err(PlanError::BatchAboveSamples { batch, samples });
        }
        let blocks = batch.div_ceil(grain);
        if grain > 1 && blocks < ranks {
            return Err(PlanError::BlocksBelowRanks {
                batch,
                blocks,
                grain,
                ranks,
                fits: batch / ranks,
            });
        }
        Ok(Self {
            samples,
            batch,
            ranks,
            grain,
        })
    }

    /// Rows of a block: the unit a rank owns.
    pub fn grain(&self) -> usize {
        self.grain
    }

    /// `rank`'s rows of a batch of `rows` rows: its run of whole blocks.
    fn share(&self, rows: usize, rank: usize) -> Range<usize> {
        let blocks = block(rows.div_ceil(self.grain), self.ranks, rank);
        (blocks.start * self.grain).min(rows)..(blocks.end * self.grain).min(rows)
    }

    pub fn ranks(&self) -> usize {
        self.ranks
    }

    /// Batches per epoch; the last one is short when `batch` does not divide `samples`.
    pub fn steps_per_epoch(&self) -> usize {
        self.samples.div_ceil(self.batch)
    }

    /// Global rows of batch `step` (an index within the epoch).
    pub fn batch_rows(&self, step: usize) -> Range<usize> {
        let start = step * self.batch;
        start..(start + self.batch).min(self.samples)
    }

    /// Global rows of batch `step` that `rank` owns.
    pub fn rank_share(&self, rank: usize, step: usize) -> Range<usize> {
        let rows = self.batch_rows(step);
        let share = self.share(rows.len(), rank);
        rows.start + share.start..rows.start + share.end
    }

    /// Where `rank`'s share of batch `step` lies in its local array. Every batch before `step`
    /// is full, so each contributed the same share.
    pub fn local_batch(&self, rank: usize, step: usize) -> Range<usize> {
        let start = step * self.share(self.batch, rank).len();
        start..start + self.rank_share(rank, step).len()
    }

    /// How many training rows `rank` owns.
    pub fn local_rows(&self, rank: usize) -> usize {
        let last = self.steps_per_epoch() - 1;
        self.local_batch(rank, last).end
    }

    /// The most rows `rank` has in any one batch (the size of its work buffers).
    pub fn max_local_batch(&self, rank: usize) -> usize {
        let last = self.batch_rows(self.steps_per_epoch() - 1).len();
        // In blocks, a short last batch can give a rank more rows than a full one (batch 5
        // in blocks of 2 on 2 ranks: 4 + 1 rows; a last batch of 4: 2 + 2).
        self.share(self.batch, rank)
            .len()
            .max(self.share(last, rank).len())
    }

    /// `rank`'s rows as a file reader selects them: the same block of every full batch (one
    /// strided selection) followed by its share of the short last batch, if any.
    pub fn row_pattern(&self, rank: usize) -> RowPattern {
        let full_batches = self.samples / self.batch;
        let share = self.share(self.batch, rank);
        let tail = if full_batches < self.steps_per_epoch() {
            self.rank_share(rank, full_batches)
        } else {
            self.samples..self.samples
        };
        RowPattern {
            first: share.start,
            stride: self.batch,
            count: full_batches,
            block: share.len(),
            tail,
        }
    }

    /// The global indices of `rank`'s rows, in local storage order.
    pub fn global_rows(&self, rank: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.steps_per_epoch()).flat_map(move |step| self.rank_share(rank, step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (samples, batch, ranks) small enough to check exhaustively, including uneven ones.
    fn plans() -> impl Iterator<Item = BatchPlan> {
        (1..=40).flat_map(|samples| {
            (1..=samples).flat_map(move |batch| {
                (1..=batch.min(9)).flat_map(move |ranks| {
                    (1..=4).filter_map(move |g| BatchPlan::in_blocks(samples, batch, ranks, g).ok())
                })
            })
        })
    }

    #[test]
    fn block_tiles_the_range_and_shares_differ_by_at_most_one() {
        for n in 0..50 {
            for parts in 1..12 {
                let blocks: Vec<_> = (0..parts).map(|i| block(n, parts, i)).collect();
                assert_eq!(blocks[0].start, 0);
                assert_eq!(blocks[parts - 1].end, n);
                for pair in blocks.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start);
                    assert!(pair[0].len() >= pair[1].len());
                    assert!(pair[0].len() - pair[1].len() <= 1);
                }
            }
        }
    }

    #[test]
    fn the_ranks_together_own_each_batch_exactly_once() {
        for plan in plans() {
            for step in 0..plan.steps_per_epoch() {
                let mut next = plan.batch_rows(step).start;
                for rank in 0..plan.ranks() {
                    let share = plan.rank_share(rank, step);
                    assert_eq!(share.start, next, "{plan:?} step {step} rank {rank}");
                    next = share.end;
                }
                assert_eq!(next, plan.batch_rows(step).end);
            }
        }
    }

    #[test]
    fn local_batches_tile_the_local_rows_in_order() {
        for plan in plans() {
            for rank in 0..plan.ranks() {
                let global: Vec<usize> = plan.global_rows(rank).collect();
                assert_eq!(global.len(), plan.local_rows(rank));
                let mut next = 0;
                for step in 0..plan.steps_per_epoch() {
                    let local = plan.local_batch(rank, step);
                    assert_eq!(local.start, next);
                    assert!(local.len() <= plan.max_local_batch(rank));
                    let expected: Vec<usize> = plan.rank_share(rank, step).collect();
                    assert_eq!(&global[local.clone()], &expected[..]);
                    next = local.end;
                }
            }
        }
    }

    #[test]
    fn the_row_pattern_lists_the_same_rows() {
        for plan in plans() {
            for rank in 0..plan.ranks() {
                let p = plan.row_pattern(rank);
                let strided = (0..p.count).flat_map(|i| {
                    let start = p.first + i * p.stride;
                    start..start + p.block
                });
                let rows: Vec<usize> = strided.chain(p.tail.clone()).collect();
                assert_eq!(
                    rows,
                    plan.global_rows(rank).collect::<Vec<_>>(),
                    "{plan:?} {rank}"
                );
            }
        }
    }

    #[test]
    fn uneven_cases() {
        // B does not divide n: 10 rows, batches of 4 -> 4, 4, 2.
        let plan = BatchPlan::new(10, 4, 3).unwrap();
        assert_eq!(plan.steps_per_epoch(), 3);
        assert_eq!(plan.batch_rows(2), 8..10);
        // N does not divide B: shares 2, 1, 1 of each full batch.
        assert_eq!(plan.rank_share(0, 1), 4..6);
        assert_eq!(plan.rank_share(1, 1), 6..7);
        assert_eq!(plan.rank_share(2, 1), 7..8);
        // N > rows of the last batch: rank 2 owns nothing of batch 2.
        assert_eq!(plan.rank_share(0, 2), 8..9);
        assert_eq!(plan.rank_share(1, 2), 9..10);
        assert!(plan.rank_share(2, 2).is_empty());
        assert_eq!(plan.local_rows(0), 5);
        assert_eq!(plan.local_rows(2), 2);
        assert_eq!(plan.global_rows(0).collect::<Vec<_>>(), vec![0, 1, 4, 5, 8]);
    }

    #[test]
    fn blocks_are_the_same_rows_whatever_the_ranks() {
        // 23 rows, batches of 10 in blocks of 3: blocks start at 0, 3, 6, 9 of each batch.
        for ranks in 1..=4 {
            let plan = BatchPlan::in_blocks(23, 10, ranks, 3).unwrap();
            for step in 0..plan.steps_per_epoch() {
                let batch = plan.batch_rows(step);
                for rank in 0..ranks {
                    let share = plan.rank_share(rank, step);
                    let from_batch = share.start - batch.start;
                    assert_eq!(from_batch % 3, 0, "P={ranks} step {step} rank {rank}");
                    assert!(share.end == batch.end || (share.end - batch.start).is_multiple_of(3));
                }
            }
        }
        let err = BatchPlan::in_blocks(100, 10, 5, 3).unwrap_err();
        assert!(err.to_string().contains("--block-rows 2 or less"), "{err}");
    }

    #[test]
    fn bad_sizes_are_refused_with_the_option_named() {
        assert_eq!(BatchPlan::new(0, 1, 1), Err(PlanError::NoSamples));
        let err = BatchPlan::new(100, 3, 4).unwrap_err();
        assert!(err.to_string().contains("--batch (3)"));
        let err = BatchPlan::new(100, 200, 4).unwrap_err();
        assert!(err.to_string().contains("--samples (100)"));
    }
}
