//! The interface between a generated protocol and the tools that run it.
//!
//! `smelt-model-check` and `smelt-runtime` depend on this trait only, never
//! on the spec language. Everything a tool needs to know about a protocol —
//! its roles, properties, check configurations, how clients talk to it, how
//! its durable state is stored — is here.

use crate::client::{Client, ClientMsg, ClientState};
use crate::effects::Effects;
use crate::error::HandlerError;
use crate::rewrite::Rewrite;
use crate::session::SessionError;
use serde::{de::DeserializeOwned, Serialize};
use stateright::actor::{Actor, Id};
use stateright::semantics::SequentialSpec;
use std::borrow::Cow;
use std::fmt::Debug;
use std::hash::Hash;

/// Which start of a node this is: what a spec's `init` reads as
/// `restarted`. The checker starts every node once with `First` and
/// recovers a crashed one with `Restart`; the runtime says `Restart` when
/// the data directory was stamped by an earlier start. The stamp is synced
/// before the first start runs, so a node that sent anything never starts
/// as `First` again (unless its disk is lost). The one runtime case the
/// checker does not produce: a first start that crashed before its writes
/// were durable (so before it sent anything) restarts as `Restart` with
/// nothing recovered — `init` must treat that like a restart of a node
/// that has done nothing yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Boot {
    /// The node's first start: it never ran, sent or saved anything.
    First,
    /// A recovery after a crash (or a stop): it may have run before.
    Restart,
}

impl Boot {
    /// Whether this start recovers from an earlier run.
    pub fn restarted(self) -> bool {
        self == Boot::Restart
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkKind {
    UnorderedDuplicating,
    UnorderedNonDuplicating,
    Ordered,
}

impl NetworkKind {
    pub fn name(self) -> &'static str {
        match self {
            NetworkKind::UnorderedDuplicating => "unordered_duplicating",
            NetworkKind::UnorderedNonDuplicating => "unordered_nonduplicating",
            NetworkKind::Ordered => "ordered",
        }
    }

    pub fn parse(s: &str) -> Option<NetworkKind> {
        Some(match s {
            "unordered_duplicating" | "duplicating" => NetworkKind::UnorderedDuplicating,
            "unordered_nonduplicating" | "unordered" => NetworkKind::UnorderedNonDuplicating,
            "ordered" | "fifo" => NetworkKind::Ordered,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Safety,
    Liveness,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Bfs,
    Dfs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    Any,
    PartialSynchrony,
    Synchronous,
    NoTimeouts,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    Unspecified,
    Ok,
    Violation(String),
}

/// A `check` block of the spec, as plain data the checker can override.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CheckConfig {
    pub name: String,
    /// Which `check` block of the spec this came from (for its workload).
    pub index: usize,
    /// Servers per role, in role order.
    pub servers: Vec<u64>,
    pub clients: u64,
    pub network: NetworkKind,
    pub lossy: bool,
    pub drops: u64,
    /// Liveness: timer firings that may break the timing model (`races N`).
    pub races: u64,
    pub crash: u64,
    /// Liveness: servers that may stop for good (`stops N`).
    #[serde(default)]
    pub stops: u64,
    /// Resends per request after a timeout before a client gives up
    /// (`retries N`); `None`: clients never time out in safety checks.
    pub retries: Option<u64>,
    /// The session table's capacity for this check (`sessions N`).
    pub sessions: Option<u64>,
    pub mode: Mode,
    pub symmetry: bool,
    pub max_depth: Option<u64>,
    pub max_states: Option<u64>,
    pub strategy: Strategy,
    pub threads: Option<u64>,
    pub timing: Timing,
    pub expect: Expect,
    /// The check's state constraint (`bound <expr>`), as written: the search
    /// does not enter states where it is false. See `Protocol::eval_bound`.
    pub bound: Option<&'static str>,
    /// Properties this check leaves out (`skip A, B`), by name.
    pub skip: Vec<String>,
}

/// Which node ids belong to which role in a configuration: roles in order,
/// then clients, numbered from zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub roles: Vec<Vec<Id>>,
    pub clients: Vec<Id>,
    /// The session table's capacity, where a check overrides the spec's
    /// `sessions N` (deployed nodes always use the spec's).
    pub sessions_max: Option<u64>,
}

impl Layout {
    pub fn new(servers: &[u64], clients: u64) -> Layout {
        let mut next = 0usize;
        let mut roles = Vec::new();
        for &n in servers {
            roles.push((next..next + n as usize).map(Id::from).collect());
            next += n as usize;
        }
        let clients = (next..next + clients as usize).map(Id::from).collect();
        Layout {
            roles,
            clients,
            sessions_max: None,
        }
    }

    pub fn servers(&self) -> Vec<Id> {
        self.roles.iter().flatten().copied().collect()
    }

    pub fn actor_count(&self) -> usize {
        self.roles.iter().map(Vec::len).sum::<usize>() + self.clients.len()
    }

    pub fn role_of(&self, id: Id) -> Option<usize> {
        self.roles.iter().position(|r| r.contains(&id))
    }

    /// The servers whose role takes client requests (`roles`: the
    /// protocol's role table, `Protocol::roles()`), the ones clients send to.
    pub fn serving(&self, roles: &[RoleInfo]) -> Vec<Id> {
        self.roles
            .iter()
            .enumerate()
            .filter(|(r, _)| roles.get(*r).is_some_and(|i| i.serves_clients))
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerInfo {
    pub name: &'static str,
    pub min_us: u64,
    pub max_us: u64,
}

#[derive(Clone, Copy, Debug)]
pub struct RoleInfo {
    pub name: &'static str,
    /// The role has `on request` handlers: clients may send to it.
    pub serves_clients: bool,
    pub timers: &'static [TimerInfo],
    pub states: &'static [&'static str],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PropertyKind {
    Invariant,
    Reachable,
    Eventually,
    LeadsTo,
    Linearizable,
}

/// What a leads-to property quantifies over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinderKind {
    Role(usize),
    Client,
}

#[derive(Clone, Copy, Debug)]
pub struct PropertyInfo {
    pub name: &'static str,
    pub kind: PropertyKind,
    pub binders: &'static [BinderKind],
    /// Where the property is declared, and its source text.
    pub line: u32,
    pub text: &'static str,
}

/// Read access to a global state, for evaluating properties.
pub trait View<A: Actor> {
    fn actor_count(&self) -> usize;
    fn actor_state(&self, index: usize) -> &A::State;
    fn is_crashed(&self, index: usize) -> bool;
}

/// A protocol generated from a `.sm` spec.
///
/// The actor's types are restated as bounded associated types, because
/// bounds written as `where` clauses on `Actor`'s types would not be implied
/// for users of the trait.
pub trait Protocol:
    Actor<
        Msg = <Self as Protocol>::Message,
        State = <Self as Protocol>::NodeState,
        Timer = <Self as Protocol>::TimerKind,
        Random = <Self as Protocol>::Choice,
        Storage = <Self as Protocol>::Durable,
    > + Clone
    + Debug
    + PartialEq
    + Eq
    + Hash
    + Send
    + Sync
    + 'static
{
    type Message: Clone + Debug + Eq + Hash + Ord + Serialize + DeserializeOwned + Rewrite + Send + Sync + 'static;
    type NodeState: Clone
        + Debug
        + Default
        + Eq
        + Hash
        + Ord
        + Serialize
        + DeserializeOwned
        + Rewrite
        + Send
        + Sync
        + 'static;
    type TimerKind: Clone + Debug + Eq + Hash + Ord + Serialize + DeserializeOwned + Rewrite + Send + Sync + 'static;
    type Choice: Clone + Debug + Eq + Hash + Ord + Serialize + DeserializeOwned + Rewrite + Send + Sync + 'static;
    type Durable: Clone + Debug + Eq + Hash + Ord + Serialize + DeserializeOwned + Rewrite + Send + Sync + 'static;
    type Request: Clone + Debug + Eq + Hash + Ord + Serialize + DeserializeOwned + Rewrite + Send + Sync;
    type Reply: Clone + Debug + Eq + Hash + Ord + Serialize + DeserializeOwned + Rewrite + Send + Sync;
    /// The service's sequential specification (the linearizability oracle).
    type Service: SequentialSpec<Op = Self::Request, Ret = Result<Self::Reply, HandlerError>>
        + Clone
        + Debug
        + Eq
        + Hash
        + Send
        + Sync;
    /// A change to durable state, as the runtime persists it.
    type Delta: Clone + Debug + Serialize + DeserializeOwned + Send + Sync;

    const NAME: &'static str;
    /// The spec's path, for messages.
    const SPEC: &'static str;
    /// A variant's base spec (empty for a spec that is not a variant): the
    /// file of a `Loc` whose file is 1.
    const SPEC_BASE: &'static str = "";
    /// True when node ids are interchangeable within each role.
    const SYMMETRIC: bool;
    /// The types of the durable state, as text (`smelt_compiler::schema`):
    /// a data directory records its hash, and a node refuses one written
    /// under another schema.
    const STORAGE_SCHEMA: &'static str = "";

    fn roles() -> &'static [RoleInfo];
    fn properties() -> &'static [PropertyInfo];
    fn checks() -> Vec<CheckConfig>;

    /// The requests client `client` (from 0) issues under check `check`.
    fn workload(check: usize, client: u64) -> Result<Vec<Self::Request>, HandlerError>;
    fn service() -> Result<Self::Service, HandlerError>;

    /// The actor for server `id` in `layout`; `None` if `id` is not a server.
    fn server(id: Id, layout: &Layout) -> Option<Self>;
    /// The model client. `retry`: whether it has a retry timer, and if so
    /// how many resends it makes before it gives up (`None`: never).
    fn client(workload: Vec<Self::Request>, servers: Vec<Id>, retry: Option<Option<u32>>, pick: bool) -> Self;
    /// Whether this actor is a model client.
    fn is_client(&self) -> bool;

    /// Evaluates an invariant, reachable or eventually property.
    fn eval<V: View<Self>>(property: usize, view: &V) -> Result<bool, HandlerError>;
    /// Evaluates check `check`'s state constraint (true when it has none).
    fn eval_bound<V: View<Self>>(check: usize, view: &V) -> Result<bool, HandlerError>;
    /// Evaluates one side of a leads-to property for one binding of its
    /// quantifiers (actor indices).
    fn eval_leads_to<V: View<Self>>(
        property: usize,
        view: &V,
        binding: &[usize],
        target: bool,
    ) -> Result<bool, HandlerError>;

    /// The error a node stopped with, if any.
    fn failure(state: &Self::State) -> Option<&HandlerError>;
    fn client_state(state: &Self::State) -> Option<&ClientState>;
    /// A client's state as a node state (the simulator shows its clients
    /// to the spec's properties this way).
    fn client_node_state(state: ClientState) -> Self::State;
    /// The role and explicit state a node is in, for traces.
    fn describe_state(state: &Self::State) -> (&'static str, Option<&'static str>);
    /// A node's state as `(name, value)` pairs, for traces: its explicit
    /// state (if the role has states) and every variable, in declaration
    /// order, formatted with `Debug`.
    fn describe_fields(state: &Self::State) -> Vec<(&'static str, String)>;
    /// A node's integer and boolean variables (not ghosts), for the
    /// runtime's metrics: cheap to take at every scrape, unlike
    /// `describe_fields`, which formats logs and maps.
    fn scalar_fields(_state: &Self::State) -> Vec<(&'static str, i128)> {
        Vec::new()
    }
    /// `ready when e` of node `id`'s role, for the runtime's `/ready`:
    /// `None` if the role declares none.
    fn ready(&self, _id: Id, _state: &Self::State) -> Option<bool> {
        None
    }
    /// `metric name = e` of node `id`'s role, for the runtime's metrics.
    fn spec_metrics(&self, _id: Id, _state: &Self::State) -> Vec<(&'static str, i128)> {
        Vec::new()
    }

    /// The service's requests: name and parameter names, for help texts.
    fn requests() -> &'static [(&'static str, &'static [&'static str])];
    /// Builds a request from command-line words (`["Put", "7"]`). Names
    /// match case-insensitively; parameters are integers or `true`/`false`.
    fn parse_request(words: &[&str]) -> Result<Self::Request, String>;

    fn request_msg(tag: Client, request: Self::Request) -> Self::Msg;
    fn reply_msg(tag: Client, reply: Self::Reply) -> Self::Msg;
    /// The session table's verdict when `reply` is a `Rejected` reply
    /// (only services with `sessions` produce them).
    fn rejection(reply: &Self::Reply) -> Option<SessionError> {
        let _ = reply;
        None
    }
    /// The capacity of the service's session table (`sessions N`), or
    /// `None` when the service keeps no sessions.
    const SESSIONS: Option<u64> = None;
    fn client_msg(msg: &Self::Msg) -> Option<ClientMsg<'_, Self::Request, Self::Reply>>;
    /// The client timer, for retries.
    fn client_retry_timer() -> Self::Timer;
    /// A client's choice of server (when clients pick nondeterministically).
    fn client_choice(target: Id) -> Self::Random;
    fn as_client_choice(choice: &Self::Random) -> Option<Id>;
    /// The role whose timer this is, and the timer's declared index.
    fn timer_info(timer: &Self::Timer) -> Option<(usize, usize)>;

    /// Whether delivering `msg` may run a `send early` (over-approximated:
    /// by the handlers' events, not their states or guards). For those
    /// steps the checker also explores a crash after the early sends left
    /// and before the step's durable writes reached the disk.
    fn sends_early_on_msg(msg: &Self::Msg) -> bool {
        let _ = msg;
        false
    }
    /// The same for timeouts, `choose` outcomes and restarts.
    fn sends_early_on_other() -> bool {
        false
    }

    /// Starts (or restarts) a node: builds volatile state, restores durable
    /// state from `storage` (initial values when `None`) and runs `init`,
    /// which sees `boot` as `restarted`.
    fn handle_start<E: Effects<Self, Self::Delta>>(
        &self,
        id: Id,
        storage: Option<&Self::Storage>,
        boot: Boot,
        fx: &mut E,
    ) -> Self::State;
    fn handle_msg<E: Effects<Self, Self::Delta>>(
        &self,
        id: Id,
        state: &mut Cow<'_, Self::State>,
        src: Id,
        msg: Self::Msg,
        fx: &mut E,
    );
    fn handle_timeout<E: Effects<Self, Self::Delta>>(
        &self,
        id: Id,
        state: &mut Cow<'_, Self::State>,
        timer: &Self::Timer,
        fx: &mut E,
    );
    fn handle_random<E: Effects<Self, Self::Delta>>(
        &self,
        id: Id,
        state: &mut Cow<'_, Self::State>,
        random: &Self::Random,
        fx: &mut E,
    );

    /// The durable state of a node that has never saved anything.
    fn initial_storage(&self, id: Id) -> Result<Self::Storage, HandlerError>;
    /// Applies a delta to durable storage, as recovery does when it replays
    /// the log. An error means the data does not fit the spec.
    fn apply_delta(storage: &mut Self::Storage, delta: Self::Delta) -> Result<(), String>;
    /// The durable part of a node's state, for snapshots.
    fn storage_of(state: &Self::State) -> Option<Self::Storage>;
    /// Resets the `ghost` variables of a state and of a storage (the
    /// runtime does not keep them), so the checker can compare a handler's
    /// result in the checker's world with the runtime's.
    fn erase_ghosts(state: &mut Self::State);
    fn erase_ghost_storage(storage: &mut Self::Storage);
}
