//! `--fail-at RANK:PHASE[:STEP]`: a testing aid that makes one rank fail on purpose, so that
//! the tests can show what the job does when a rank fails anywhere (it ends, non-zero, with one
//! message naming the rank, and never hangs). `--fail-mode` picks how the rank fails: an error,
//! a panic, or a hang (it stops making progress, for the stall watchdog).
//!
//! Not the failure handling itself (`clock`, `Comm::agree`, `main`): only the plan.

use std::fmt;
use std::str::FromStr;

use clap::ValueEnum;

use crate::phase::{FaultTarget, Phase};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum FailMode {
    /// Return an error (the usual path of any runtime failure).
    #[default]
    Error,
    /// Panic (the path of a bug).
    Panic,
    /// Stop making progress, forever (a stuck rank).
    Hang,
}

/// One planned failure: `rank` fails in `phase` (at `step`, counted from 1, or the first time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailAt {
    pub rank: usize,
    pub phase: Phase,
    pub step: Option<usize>,
}

impl FromStr for FailAt {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let targets = || {
            Phase::ALL
                .into_iter()
                .filter(|p| p.fault_target().is_some())
        };
        let phases = targets().map(Phase::name).collect::<Vec<_>>().join("|");
        let usage =
            || format!("expected RANK:PHASE[:STEP] with PHASE one of {phases}, e.g. 2:allreduce:5");
        let parts: Vec<&str> = text.split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(usage());
        }
        let rank = parts[0].parse().map_err(|_| usage())?;
        let phase = targets().find(|p| p.name() == parts[1]).ok_or_else(usage)?;
        let per_step = phase.fault_target() == Some(FaultTarget::PerStep);
        let step = match parts.get(2) {
            None => None,
            Some(s) => match s.parse::<usize>() {
                Ok(step) if step >= 1 && per_step => Some(step),
                Ok(_) if !per_step => {
                    return Err(format!("phase {} happens once; give no STEP", parts[1]))
                }
                _ => return Err(usage()),
            },
        };
        Ok(Self { rank, phase, step })
    }
}

impl fmt::Display for FailAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.rank, self.phase.name())?;
        match self.step {
            Some(step) => write!(f, ":{step}"),
            None => Ok(()),
        }
    }
}

/// The configured failure, checked at each phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    pub plan: Option<FailAt>,
    pub mode: FailMode,
}

impl Faults {
    /// Fails here if the plan says so: `rank` is in `phase` of `step` (0-based; `None` outside
    /// the step loop).
    pub fn check(&self, rank: usize, phase: Phase, step: Option<usize>) -> anyhow::Result<()> {
        let Some(plan) = self.plan else {
            return Ok(());
        };
        let step_matches = match (plan.step, step) {
            (Some(wanted), Some(now)) => wanted == now + 1,
            (None, _) => true,
            (Some(_), None) => false,
        };
        if plan.rank != rank || plan.phase != phase || !step_matches {
            return Ok(());
        }
        let at = match step {
            Some(s) => format!("{} of step {}", phase.name(), s + 1),
            None => phase.name().to_string(),
        };
        match self.mode {
            FailMode::Error => anyhow::bail!("injected fault (--fail-at {plan}) in {at}"),
            FailMode::Panic => panic!("injected panic (--fail-at {plan}) in {at}"),
            FailMode::Hang => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_and_print_back() {
        for text in ["0:startup", "3:allreduce:5", "2:compute:1", "1:write"] {
            assert_eq!(text.parse::<FailAt>().unwrap().to_string(), text);
        }
        for bad in [
            "",
            "1",
            "x:compute",
            "1:nowhere",
            "1:compute:0",
            "1:compute:x",
            "1:2:3:4",
        ] {
            assert!(
                bad.parse::<FailAt>().unwrap_err().contains("RANK:PHASE"),
                "{bad}"
            );
        }
        assert!("1:data:3"
            .parse::<FailAt>()
            .unwrap_err()
            .contains("happens once"));
    }

    #[test]
    fn only_the_planned_rank_phase_and_step_fail() {
        let faults = Faults {
            plan: Some("1:update:3".parse().unwrap()),
            mode: FailMode::Error,
        };
        assert!(faults.check(1, Phase::Update, Some(1)).is_ok());
        assert!(faults.check(0, Phase::Update, Some(2)).is_ok());
        assert!(faults.check(1, Phase::Compute, Some(2)).is_ok());
        let err = faults.check(1, Phase::Update, Some(2)).unwrap_err();
        assert!(err.to_string().contains("update of step 3"), "{err}");
    }
}
