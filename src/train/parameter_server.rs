//! Asynchronous SGD with parameter servers (`--algorithm async-ps [--servers S]`), in the
//! manner of DistBelief's Downpour SGD: ranks 0..S-1 hold the parameters in S shards (a block
//! each), the other W = P - S ranks are workers holding the training rows.
//!
//! ```text
//! worker, each step:  pull    from every server: a PULL request, then its shard and version
//!                     compute the gradient of my next batch (my share of the global batch)
//!                     push    to every server: [PUSH, version pulled, rows], then its part
//!                             of the gradient; on to the next step without waiting
//! server, each message, from any worker in arrival order:
//!                     PULL        reply with my shard and my version (updates applied)
//!                     PUSH        receive the gradient, apply the update rule to my shard;
//!                                 staleness = my version - the version the worker pulled
//!                     EPOCH_DONE  count it; the epoch ends when every worker's has come
//! every epoch end, all ranks: the model from the shards (one sum), the evaluation, the stop
//!                     vote: the only points where the ranks wait for each other.
//! ```
//! Cost per worker step: 3 S small messages, n values pulled and n pushed (the shards add up to
//! n), whatever W is; a server takes W pushes of n / S values for every step of a worker, so
//! it is the bottleneck once W n / S outgrows its link or its memory bandwidth (more
//! `--servers` shard it). Each worker steps on its share of the global batch, so an epoch still
//! passes over every row once, in W times as many (smaller) updates as synchronous SGD.
//!
//! Not reproducible: the order in which a server applies gradients, and with it the staleness
//! and the model, depends on timing. The ranks' deadlock-freedom rests on one rule: a server
//! blocks only on a worker that is already sending to it or waiting for it (the reply to its
//! PULL, the gradient after its PUSH header), and a worker talks to one server at a time.

use std::ops::Range;

use mpi::traits::*;

use super::trainer::Trainer;
use crate::comm::{Comm, Traffic};
use crate::interrupt::signal_of;
use crate::model::BatchStats;
use crate::optim::Optimizer;
use crate::partition::block;
use crate::phase::Phase;
use crate::real::Real;
use crate::settings::TrainSettings;

/// Message tags: a worker's [kind, version, rows] header, and the values after it.
const HEADER: i32 = 7101;
const GRADIENT: i32 = 7102;
const SHARD: i32 = 7103;
const VERSION: i32 = 7104;
/// Header kinds.
const PULL: u64 = 1;
const PUSH: u64 = 2;
const EPOCH_DONE: u64 = 3;
const HEADER_BYTES: u64 = 3 * 8;

/// What a server measured: every gradient it applied, in order.
#[derive(Debug, Default, Clone)]
pub struct Applied {
    /// Updates of the server's shard between the worker's pull and this update.
    pub staleness: Vec<u64>,
    /// The rank of the worker that sent it.
    pub worker: Vec<u64>,
    /// Bytes the server sent in its replies (shards and versions).
    pub bytes_sent: u64,
}

/// A rank's part in asynchronous SGD: a server's shard and update rule, or a worker's timings.
pub struct ParameterServer<F> {
    servers: usize,
    workers: usize,
    /// Every server's shard of the parameter vector.
    shards: Vec<Range<usize>>,
    /// A server's update rule over its shard; its schedule counts updates (W per worker step).
    optimizer: Option<Optimizer<F>>,
    /// A server's updates so far: its shard's version.
    version: u64,
    /// A worker's record of the versions it pulled in this step, one per server.
    pulled: Vec<u64>,
    pub applied: Applied,
    /// A worker's seconds of each step's pull and push.
    pub pull_s: Vec<f64>,
    pub push_s: Vec<f64>,
}

impl<F: Real> ParameterServer<F> {
    /// For a run of `steps_per_epoch` worker steps in each of `config.epochs` epochs.
    pub fn new(
        config: &TrainSettings,
        comm: &Comm,
        n_params: usize,
        steps_per_epoch: usize,
    ) -> Self {
        let servers = config.servers;
        let workers = comm.size() - servers;
        let steps = config.epochs * steps_per_epoch;
        let shards: Vec<_> = (0..servers).map(|s| block(n_params, servers, s)).collect();
        let optimizer = (comm.rank() < servers).then(|| {
            let schedule = config.schedule(steps_per_epoch * workers);
            Optimizer::new(config.rule(), schedule, shards[comm.rank()].len())
        });
        Self {
            servers,
            workers,
            shards,
            optimizer,
            version: 0,
            pulled: vec![0; servers],
            // A server applies every worker's every step: room for all, made before training.
            applied: Applied {
                staleness: Vec::with_capacity(workers * steps),
                worker: Vec::with_capacity(workers * steps),
                bytes_sent: 0,
            },
            pull_s: vec![0.0; steps],
            push_s: vec![0.0; steps],
        }
    }

    pub fn is_server(&self, rank: usize) -> bool {
        rank < self.servers
    }
}

impl<F: Real> Trainer<'_, F> {
    /// Collective: the remaining epochs of asynchronous SGD, each ended by the model's
    /// assembly, the evaluation and the stop vote. Returns the signal that stopped it, if any.
    pub(super) fn train_asynchronously(&mut self) -> anyhow::Result<Option<(i32, &'static str)>> {
        let steps_per_epoch = self.steps_per_epoch();
        let epochs = self.record.steps() / steps_per_epoch;
        for epoch in self.next_step / steps_per_epoch..epochs {
            let steps = epoch * steps_per_epoch..(epoch + 1) * steps_per_epoch;
            let last = steps.end - 1;
            let rank = self.comm.rank();
            match self.server().is_server(rank) {
                true => self.serve_epoch(),
                false => {
                    for step in steps.clone() {
                        let stats = self.worker_step(step)?;
                        self.seen += stats;
                    }
                    self.end_worker_epoch();
                }
            }
            self.assemble_model();
            self.evaluate(last)?;
            self.next_step = steps.end;
            self.vote.exchange(self.signals.bits());
            let agreed = self.vote.finish();
            if agreed != 0 && self.next_step < self.record.steps() {
                return Ok(signal_of(agreed));
            }
        }
        Ok(None)
    }

    fn server(&mut self) -> &mut ParameterServer<F> {
        self.parameter_server
            .as_mut()
            .expect("async-ps trains with servers")
    }

    /// A server's epoch: every message in arrival order until every worker has ended its
    /// epoch. `--fail-at RANK:update:K` fails the server at the K-th update it applies.
    fn serve_epoch(&mut self) {
        let rank = self.comm.rank();
        let world = self.comm.world();
        let ps = self
            .parameter_server
            .as_mut()
            .expect("async-ps trains with servers");
        let shard = ps.shards[rank].clone();
        let mut header = [0u64; 3];
        let mut done = 0;
        while done < ps.workers {
            let status = world
                .any_process()
                .receive_into_with_tag(&mut header[..], HEADER);
            let worker = world.process_at_rank(status.source_rank());
            match header[0] {
                PULL => {
                    worker.send_with_tag(&self.params[shard.clone()], SHARD);
                    worker.send_with_tag(&[ps.version][..], VERSION);
                    ps.applied.bytes_sent += (shard.len() * std::mem::size_of::<F>()) as u64 + 8;
                }
                PUSH => {
                    let gradient = &mut self.grad[..shard.len()];
                    worker.receive_into_with_tag(gradient, GRADIENT);
                    let update = ps.applied.staleness.len();
                    if let Err(error) = self.config.faults.check(rank, Phase::Update, Some(update))
                    {
                        self.comm.abort(&error);
                    }
                    let optimizer = ps.optimizer.as_mut().expect("a server's update rule");
                    let rows = header[2] as usize;
                    let params = &mut self.params[shard.clone()];
                    optimizer.step(ps.version as usize, params, gradient, rows.max(1));
                    ps.applied.staleness.push(ps.version - header[1]);
                    ps.applied.worker.push(status.source_rank() as u64);
                    ps.version += 1;
                }
                EPOCH_DONE => done += 1,
                kind => unreachable!("header kind {kind} from rank {}", status.source_rank()),
            }
        }
    }

    /// A worker's step: pull the parameters, compute the gradient of its batch, push it.
    fn worker_step(&mut self, step: usize) -> anyhow::Result<BatchStats> {
        let world = self.comm.world();
        let ps = self
            .parameter_server
            .as_mut()
            .expect("async-ps trains with servers");
        self.clock.enter(step, Phase::Allreduce)?;
        let begin = mpi::time();
        for (server, shard) in ps.shards.iter().enumerate() {
            let process = world.process_at_rank(server as i32);
            process.send_with_tag(&[PULL, 0, 0][..], HEADER);
            process.receive_into_with_tag(&mut self.params[shard.clone()], SHARD);
            let mut version = [0u64];
            process.receive_into_with_tag(&mut version[..], VERSION);
            ps.pulled[server] = version[0];
        }
        ps.pull_s[step] = mpi::time() - begin;

        self.clock.enter(step, Phase::Compute)?;
        let data_rank = self.config.data_rank(self.comm.rank()).expect("a worker");
        let rows = self
            .plan
            .local_batch(data_rank, step % self.plan.steps_per_epoch());
        let count = rows.len();
        let (x, y) = self.data.train.slice(rows);
        let stats = self.model.loss_and_grad(&self.params, x, y, &mut self.grad);

        self.clock.enter(step, Phase::Allreduce)?;
        let begin = mpi::time();
        let mut traffic = Traffic::default();
        for (server, shard) in ps.shards.iter().enumerate() {
            let process = world.process_at_rank(server as i32);
            process.send_with_tag(&[PUSH, ps.pulled[server], count as u64][..], HEADER);
            process.send_with_tag(&self.grad[shard.clone()], GRADIENT);
            traffic.bytes += 2 * HEADER_BYTES + (shard.len() * std::mem::size_of::<F>()) as u64;
            traffic.messages += 3;
        }
        ps.push_s[step] = mpi::time() - begin;
        let seconds = self.clock.finish_step();
        self.record
            .record(step, seconds, 0.0, traffic, stats.loss_sum);
        Ok(stats)
    }

    /// Tells every server this worker's epoch is over.
    fn end_worker_epoch(&mut self) {
        let servers = self.server().servers;
        let world = self.comm.world();
        for server in 0..servers {
            world
                .process_at_rank(server as i32)
                .send_with_tag(&[EPOCH_DONE, 0, 0][..], HEADER);
        }
    }

    /// Collective: every rank gets the servers' shards, the same bits everywhere (a sum of
    /// each shard with zeros is exact).
    fn assemble_model(&mut self) {
        let rank = self.comm.rank();
        self.combined.fill(F::zero());
        let shard = self.server().shards.get(rank).cloned();
        if let Some(shard) = shard {
            self.combined[shard.clone()].copy_from_slice(&self.params[shard]);
        }
        let model = self.comm.sum(&self.combined);
        self.params.copy_from_slice(&model);
    }
}
