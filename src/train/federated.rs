//! Federated averaging (McMahan et al., 2017): each rank hosts a block of the `--clients`
//! clients, each client owns part of its rank's rows, and every step is a round:
//!
//! ```text
//! draw      C of the K clients, seeded by (seed, round): the same draw on every rank
//! compute   each drawn client of mine: w_k = w; E local epochs of SGD over its rows in
//!           minibatches of --batch rows; s += n_k w_k            (n_k: the client's rows)
//! allreduce s over ranks                                          (one allreduce of n values)
//! update    w = s / sum of n_k over the drawn clients             (known on every rank)
//! ```
//! Cost per round: one allreduce of the n parameters (bytes as the algorithm's formula), and
//! E x (the drawn clients' rows) forward-backward passes, however they fall on the ranks: a
//! rank whose clients were not drawn waits in the allreduce (the load imbalance is part of
//! what a study of FedAvg measures).
//!
//! Clients' rows (`assign`): a client's rows are a part of its rank's rows. IID: the rank's rows
//! in a seeded random order, cut into equal blocks. `--non-iid A`: for each class, its rows on
//! the rank are shared among the rank's clients in proportions drawn from Dirichlet(A) (label
//! skew as in Hsu, Qi and Brown, 2019). The rows are then regrouped so that each client's are
//! contiguous. Since a rank's rows depend on the number of ranks, so do the clients' data:
//! runs on different rank counts train different federations.

use std::ops::Range;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, Gamma};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::step::Combine;
use super::trainer::Trainer;
use crate::comm::Comm;
use crate::data::Dataset;
use crate::errors::usage;
use crate::model::BatchStats;
use crate::optim::Optimizer;
use crate::partition::block;
use crate::phase::Phase;
use crate::real::Real;
use crate::settings::{FederatedSettings, TrainSettings};

/// Which rows belong to which client, on this rank and in all.
pub struct Clients {
    /// This rank's clients: the global index and its rows in the regrouped local data.
    mine: Vec<(usize, Range<usize>)>,
    /// Rows of every client (all ranks'): the averaging weights, known to every rank.
    sizes: Vec<usize>,
}

impl Clients {
    /// Collective: shares this rank's rows among its clients and regroups `train` so that each
    /// client's rows are contiguous. A usage error (the same on every rank) when there are
    /// fewer clients than ranks.
    pub fn assign<F: Real>(
        settings: &FederatedSettings,
        comm: &Comm,
        train: &mut Dataset<F>,
        classes: usize,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let (clients, ranks) = (settings.clients, comm.size());
        if clients < ranks {
            return Err(usage(format!(
                "--clients {clients} on {ranks} ranks: every rank hosts at least one client; use --clients {ranks} or more"
            )));
        }
        let hosted = block(clients, ranks, comm.rank());
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xC11E_0000 ^ comm.rank() as u64);
        let members = match settings.non_iid {
            None => iid_members(train.rows(), hosted.len(), &mut rng),
            Some(alpha) => skewed_members(&train.y, classes, hosted.len(), alpha, &mut rng),
        };
        let order: Vec<usize> = members.iter().flatten().copied().collect();
        train.x = train.x.select(ndarray::Axis(0), &order);
        train.y = order.iter().map(|&row| train.y[row]).collect();
        let mut start = 0;
        let mut mine = Vec::with_capacity(hosted.len());
        let mut sizes = vec![0.0; clients];
        for (client, rows) in hosted.zip(&members) {
            mine.push((client, start..start + rows.len()));
            sizes[client] = rows.len() as f64;
            start += rows.len();
        }
        // Row counts are exact in f64 (below 2^53), and every rank fills only its own clients.
        let sizes = comm.sum(&sizes).iter().map(|&n| n as usize).collect();
        Ok(Self { mine, sizes })
    }
}

/// The rank's rows in a seeded random order, cut into `clients` near-equal blocks.
fn iid_members(rows: usize, clients: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(rng);
    (0..clients)
        .map(|j| order[block(rows, clients, j)].to_vec())
        .collect()
}

/// Each class's rows shared among the clients in proportions drawn from Dirichlet(alpha)
/// (normalised Gamma(alpha, 1) draws), cut at the rounded cumulative proportions.
fn skewed_members(
    labels: &[u32],
    classes: usize,
    clients: usize,
    alpha: f64,
    rng: &mut Xoshiro256PlusPlus,
) -> Vec<Vec<usize>> {
    let gamma = Gamma::new(alpha, 1.0).expect("alpha was checked positive and finite");
    let mut members = vec![Vec::new(); clients];
    for class in 0..classes as u32 {
        let mut rows: Vec<usize> = (0..labels.len()).filter(|&r| labels[r] == class).collect();
        rows.shuffle(rng);
        let weights: Vec<f64> = (0..clients).map(|_| gamma.sample(rng)).collect();
        let total: f64 = weights.iter().sum();
        let mut cumulative = 0.0;
        let mut start = 0;
        for (client, weight) in weights.iter().enumerate() {
            cumulative += weight;
            let end = match total > 0.0 && client + 1 < clients {
                true => ((cumulative / total * rows.len() as f64).round() as usize).min(rows.len()),
                false => rows.len(),
            };
            members[client].extend(&rows[start..end.max(start)]);
            start = end.max(start);
        }
    }
    members
}

/// A rank's part of federated averaging: its clients and the buffers of their local training.
pub struct Federated<F> {
    clients: Clients,
    settings: FederatedSettings,
    /// Rows of a local minibatch.
    batch: usize,
    seed: u64,
    /// A client's model while it trains.
    local: Vec<F>,
    /// The clients' SGD, its momentum reset for every client; its rate follows the rounds.
    optimizer: Optimizer<F>,
    /// The clients drawn for the current round.
    drawn: Vec<usize>,
}

impl<F: Real> Federated<F> {
    pub fn new(clients: Clients, config: &TrainSettings, n_params: usize) -> Self {
        Self {
            clients,
            settings: config.federated,
            batch: config.batch,
            seed: config.seed,
            local: vec![F::zero(); n_params],
            optimizer: Optimizer::new(config.rule(), config.schedule(1), n_params),
            drawn: Vec::with_capacity(config.federated.clients),
        }
    }

    /// The clients drawn for `round` into `drawn` (room for every client, so nothing is
    /// allocated in a round), sorted: the same on every rank, a function of the round alone.
    fn draw(&self, round: usize, drawn: &mut Vec<usize>) {
        let stream = self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ round as u64;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(stream);
        drawn.clear();
        drawn.extend(0..self.settings.clients);
        drawn.partial_shuffle(&mut rng, self.settings.per_round);
        drawn.truncate(self.settings.per_round);
        drawn.sort_unstable();
    }

    /// Rows of the drawn clients: the denominator of the round's average.
    fn drawn_rows(&self, drawn: &[usize]) -> usize {
        drawn.iter().map(|&k| self.clients.sizes[k]).sum()
    }

    /// Rows round `round` trained on, over all ranks: each drawn client's, once per local
    /// epoch.
    pub fn rows_of_round(&self, round: usize) -> usize {
        let mut drawn = Vec::with_capacity(self.settings.clients);
        self.draw(round, &mut drawn);
        self.drawn_rows(&drawn) * self.settings.local_epochs
    }

    /// Rows the first `rounds` rounds trained on.
    pub fn rows_trained(&self, rounds: usize) -> usize {
        (0..rounds).map(|round| self.rows_of_round(round)).sum()
    }
}

impl<F: Real> Trainer<'_, F> {
    /// One round of federated averaging as step `round`: the drawn clients' local training
    /// (compute), the allreduce of their row-weighted models, the average (update).
    pub(super) fn federated_round(&mut self, round: usize) -> anyhow::Result<BatchStats> {
        let fed = self.federated.as_mut().expect("fedavg trains with clients");
        self.clock.enter(round, Phase::Compute)?;
        let mut drawn = std::mem::take(&mut fed.drawn);
        fed.draw(round, &mut drawn);
        let zero = F::zero();
        self.grad.fill(zero);
        let mut stats = BatchStats::default();
        let mine = fed.clients.mine.iter().filter(|(k, _)| drawn.contains(k));
        for (_, rows) in mine {
            fed.local.copy_from_slice(&self.params);
            fed.optimizer.state.fill(zero);
            for _ in 0..fed.settings.local_epochs {
                for start in rows.clone().step_by(fed.batch) {
                    let minibatch = start..(start + fed.batch).min(rows.end);
                    let (x, y) = self.data.train.slice(minibatch.clone());
                    // `combined` holds the minibatch's gradient until the allreduce fills it.
                    stats += self
                        .model
                        .loss_and_grad(&fed.local, x, y, &mut self.combined);
                    let len = minibatch.len();
                    fed.optimizer
                        .step(round, &mut fed.local, &self.combined, len);
                }
            }
            let weight = F::from_f64(rows.len() as f64);
            for (sum, &w) in self.grad.iter_mut().zip(&fed.local) {
                *sum = *sum + weight * w;
            }
        }
        let total = fed.drawn_rows(&drawn);
        fed.drawn = drawn;
        self.clock.enter(round, Phase::Allreduce)?;
        let traffic =
            self.allreduce
                .allreduce_sum(self.comm.world(), &self.grad, &mut self.combined);
        self.clock.enter(round, Phase::Update)?;
        // Drawn clients may all be empty (strong label skew): the model stays.
        if total > 0 {
            let share = F::from_f64(1.0 / total as f64);
            for (w, &sum) in self.params.iter_mut().zip(&self.combined) {
                *w = sum * share;
            }
        }
        self.check_finite(round, Combine::Parameters)?;
        let seconds = self.clock.finish_step();
        self.record
            .record(round, seconds, 0.0, traffic, stats.loss_sum);
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iid_clients_cut_every_row_once_into_equal_blocks() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let members = iid_members(10, 3, &mut rng);
        assert_eq!(members.iter().map(Vec::len).collect::<Vec<_>>(), [4, 3, 3]);
        let mut all: Vec<usize> = members.concat();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    /// Small alpha: most clients see few classes; large alpha: every client sees every class.
    /// Every row lands with exactly one client either way.
    #[test]
    fn label_skew_follows_the_dirichlet_concentration() {
        let labels: Vec<u32> = (0..2000).map(|i| (i % 10) as u32).collect();
        let classes_seen = |alpha: f64| -> f64 {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
            let members = skewed_members(&labels, 10, 20, alpha, &mut rng);
            let mut all: Vec<usize> = members.concat();
            all.sort_unstable();
            assert_eq!(all, (0..2000).collect::<Vec<_>>(), "alpha {alpha}");
            let seen: usize = members
                .iter()
                .map(|rows| {
                    let mut classes: Vec<u32> = rows.iter().map(|&r| labels[r]).collect();
                    classes.sort_unstable();
                    classes.dedup();
                    classes.len()
                })
                .sum();
            seen as f64 / 20.0
        };
        let (skewed, even) = (classes_seen(0.1), classes_seen(100.0));
        assert!(skewed < 4.0, "alpha 0.1: {skewed} classes per client");
        assert!(even > 9.5, "alpha 100: {even} classes per client");
    }
}
