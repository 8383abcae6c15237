//! The protocol library, compiled: every spec in this directory through
//! `smelt::protocol!`, so that tests and benchmarks can drive the generated
//! code directly. The `.sm` files are the source of truth; `smelt check`
//! works on them without this crate.

smelt::protocol!("paxos.sm");
smelt::protocol!("two_phase_commit.sm");
smelt::protocol!("abd.sm");
smelt::protocol!("raft.sm");
smelt::protocol!("chain_replication.sm");
smelt::protocol!("primary_backup.sm");
smelt::protocol!("multipaxos.sm");

/// Liveness demonstrations.
pub mod liveness {
    smelt::protocol!("liveness/cycle.sm");
    smelt::protocol!("liveness/no_cycle.sm");
    smelt::protocol!("liveness/stuck.sm");
    smelt::protocol!("liveness/paxos_dueling.sm");
}

/// Benchmarks: specs written to match another tool's model state for state.
pub mod bench {
    smelt::protocol!("bench/two_phase_tla.sm");
}

/// Known-buggy variants: each must fail its check with the property it names.
pub mod buggy {
    smelt::protocol!("buggy/paxos_accept_lower_ballot.sm");
    smelt::protocol!("buggy/two_phase_commit_majority.sm");
    smelt::protocol!("buggy/two_phase_commit_wait_after_restart.sm");
    smelt::protocol!("buggy/abd_early_reply.sm");
    smelt::protocol!("buggy/chain_resync_only_with_history.sm");
    smelt::protocol!("buggy/multipaxos_long_lease.sm");
    smelt::protocol!("buggy/raft_42_commit_by_mode.sm");
    smelt::protocol!("buggy/raft_45_duplicate_votes.sm");
    smelt::protocol!("buggy/raft_46_stale_vote.sm");
    smelt::protocol!("buggy/raft_56_forget_vote.sm");
    smelt::protocol!("buggy/raft_58a_early_commands.sm");
    smelt::protocol!("buggy/raft_58b_zero_indexed.sm");
    smelt::protocol!("buggy/raft_62_volatile_vote.sm");
    smelt::protocol!("buggy/raft_66_truncate_on_stale.sm");
    smelt::protocol!("buggy/raft_figure8.sm");
    smelt::protocol!("buggy/raft_compact_committed.sm");
    smelt::protocol!("buggy/raft_early_vote.sm");
    smelt::protocol!("buggy/raft_no_dedup.sm");
}
