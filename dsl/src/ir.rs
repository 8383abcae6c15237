//! The checked, typed representation of a spec: what the compiler trusts.
//!
//! Invariants (established by `check.rs`, relied on by the compiler):
//! - every name is resolved to an index into the tables below;
//! - every expression carries its type, and no type is `Ty::Error`;
//! - aliases appear only in declared types (`Ty::Alias`), never as the type
//!   of an expression, so two expression types compare with `==`;
//! - statements only appear where they are allowed (no `send` in a service,
//!   no `goto` in an `exit` block, no durable write in `init`, ...);
//! - a service request replies exactly once on every path;
//! - functions do not recurse, types are finite, and every `goto` target is
//!   a state of the same role.
//!
//! Dispatch rule (documented for the compiler and for spec authors): an
//! event is offered to the handlers of the current state in declaration
//! order, then to the role's own handlers in declaration order; the first
//! whose pattern matches and whose `when` guard holds runs. No match: the
//! event is ignored and the node's state is untouched.

use crate::ast::{BinOp, Span, UnOp};
use serde::Serialize;

pub type RoleId = usize;
pub type StateId = usize;
pub type VarId = usize;
pub type TimerId = usize;
pub type ChoiceId = usize;
pub type MsgId = usize;
pub type RecordId = usize;
pub type EnumId = usize;
pub type AliasId = usize;
pub type FnId = usize;
pub type LocalId = usize;
pub type ReqId = usize;
pub type ReplyId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum IntTy {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
}

impl IntTy {
    pub fn name(self) -> &'static str {
        match self {
            IntTy::U8 => "u8",
            IntTy::U16 => "u16",
            IntTy::U32 => "u32",
            IntTy::U64 => "u64",
            IntTy::I8 => "i8",
            IntTy::I16 => "i16",
            IntTy::I32 => "i32",
            IntTy::I64 => "i64",
        }
    }

    pub fn signed(self) -> bool {
        matches!(self, IntTy::I8 | IntTy::I16 | IntTy::I32 | IntTy::I64)
    }

    pub fn min(self) -> i128 {
        match self {
            IntTy::U8 | IntTy::U16 | IntTy::U32 | IntTy::U64 => 0,
            IntTy::I8 => i8::MIN as i128,
            IntTy::I16 => i16::MIN as i128,
            IntTy::I32 => i32::MIN as i128,
            IntTy::I64 => i64::MIN as i128,
        }
    }

    pub fn max(self) -> i128 {
        match self {
            IntTy::U8 => u8::MAX as i128,
            IntTy::U16 => u16::MAX as i128,
            IntTy::U32 => u32::MAX as i128,
            IntTy::U64 => u64::MAX as i128,
            IntTy::I8 => i8::MAX as i128,
            IntTy::I16 => i16::MAX as i128,
            IntTy::I32 => i32::MAX as i128,
            IntTy::I64 => i64::MAX as i128,
        }
    }

    pub fn from_name(s: &str) -> Option<IntTy> {
        Some(match s {
            "u8" => IntTy::U8,
            "u16" => IntTy::U16,
            "u32" => IntTy::U32,
            "u64" => IntTy::U64,
            "i8" => IntTy::I8,
            "i16" => IntTy::I16,
            "i32" => IntTy::I32,
            "i64" => IntTy::I64,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Ty {
    Bool,
    Int(IntTy),
    /// A node id (a server of any role).
    Node,
    /// A handle on one client request: who asked and under which request id.
    Client,
    /// An immutable byte string (`"..."` literals); compared bytewise,
    /// ordered lexicographically.
    Bytes,
    Option(Box<Ty>),
    Tuple(Vec<Ty>),
    List(Box<Ty>),
    Set(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    Record(RecordId),
    Enum(EnumId),
    Message(MsgId),
    /// The service's request enum.
    Request,
    /// The service's reply enum.
    Reply,
    /// The service's state.
    Service,
    /// A declared alias; only in declared types, see the module invariants.
    Alias(AliasId, Box<Ty>),
    /// A role instance bound by a property quantifier.
    Instance(RoleId),
    /// A client instance bound by a property quantifier.
    ClientInstance,
    /// Placeholder during checking; never in a checked spec.
    Error,
}

impl Ty {
    /// The type with aliases removed at every level.
    pub fn resolved(&self) -> Ty {
        match self {
            Ty::Alias(_, t) => t.resolved(),
            Ty::Option(t) => Ty::Option(Box::new(t.resolved())),
            Ty::Tuple(ts) => Ty::Tuple(ts.iter().map(Ty::resolved).collect()),
            Ty::List(t) => Ty::List(Box::new(t.resolved())),
            Ty::Set(t) => Ty::Set(Box::new(t.resolved())),
            Ty::Map(k, v) => Ty::Map(Box::new(k.resolved()), Box::new(v.resolved())),
            t => t.clone(),
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Ty::Error)
    }

    pub fn int(&self) -> Option<IntTy> {
        match self {
            Ty::Int(i) => Some(*i),
            Ty::Alias(_, t) => t.int(),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Spec {
    pub name: String,
    pub consts: Vec<Const>,
    pub aliases: Vec<Alias>,
    pub records: Vec<Record>,
    pub enums: Vec<Enum>,
    pub messages: Vec<Message>,
    pub fns: Vec<Function>,
    pub service: Option<Service>,
    pub roles: Vec<Role>,
    pub properties: Vec<Property>,
    pub checks: Vec<Check>,
    pub locals: Vec<Local>,
    /// True when no behaviour depends on the order of node ids, so that
    /// servers of one role are interchangeable and the checker may reduce
    /// by permutations of them. See `check::symmetry` for the rule.
    pub symmetric: bool,
    /// Why the spec is not symmetric, for `smelt check` to explain.
    pub asymmetry: Option<(Span, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Const {
    pub name: String,
    pub ty: Ty,
    pub value: ConstValue,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ConstValue {
    Int(i128),
    Bool(bool),
    Bytes(Vec<u8>),
}

#[derive(Clone, Debug, Serialize)]
pub struct Alias {
    pub name: String,
    pub ty: Ty,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Record {
    pub name: String,
    pub fields: Vec<(String, Ty)>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Enum {
    pub name: String,
    pub variants: Vec<(String, Vec<Ty>)>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Message {
    pub name: String,
    pub fields: Vec<(String, Ty)>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Function {
    pub name: String,
    pub params: Vec<LocalId>,
    pub ret: Ty,
    pub lets: Vec<(Pat, Expr)>,
    pub body: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Service {
    pub name: String,
    /// `sessions N`: the capacity of the session table that makes
    /// `apply(s, client, request)` apply each client request once.
    pub sessions: Option<u64>,
    pub vars: Vec<Var>,
    pub requests: Vec<Request>,
    pub replies: Vec<ReplyVariant>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Request {
    pub name: String,
    pub params: Vec<LocalId>,
    /// The replies this request may give (indices into `Service::replies`).
    pub replies: Vec<ReplyId>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReplyVariant {
    pub name: String,
    pub fields: Vec<Ty>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Role {
    pub name: String,
    pub vars: Vec<Var>,
    pub timers: Vec<Timer>,
    pub choices: Vec<Choice>,
    pub init: Vec<Stmt>,
    /// `ready when e`: the deployed node's readiness (never the checker's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<Expr>,
    /// `metric name = e`: integers the deployed node exports.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    /// Empty when the role declares no explicit states.
    pub states: Vec<State>,
    pub initial_state: Option<StateId>,
    pub handlers: Vec<Handler>,
    pub span: Span,
}

impl Role {
    pub fn has_durable(&self) -> bool {
        self.vars.iter().any(|v| v.durable)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Metric {
    pub name: String,
    /// An integer or boolean expression over the role's state.
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Var {
    pub name: String,
    pub ty: Ty,
    pub durable: bool,
    /// A `ghost` variable exists for properties (history variables such as
    /// the log a leader had): handlers may assign it, but only ghost
    /// assignments and properties read it, so it cannot change what the
    /// protocol does. The checker keeps it in the state; the runtime skips
    /// its assignments (`Effects::GHOST`), so it costs nothing deployed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ghost: bool,
    pub init: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Timer {
    pub name: String,
    pub min_us: u64,
    pub max_us: u64,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Choice {
    pub name: String,
    pub ty: Ty,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct State {
    pub name: String,
    pub entry: Vec<Stmt>,
    pub exit: Vec<Stmt>,
    pub handlers: Vec<Handler>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Handler {
    pub event: Event,
    pub guard: Option<Expr>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub enum MsgBind {
    None,
    Whole(LocalId),
    /// `(field index, local)` pairs.
    Fields(Vec<(usize, LocalId)>),
}

#[derive(Clone, Debug, Serialize)]
pub enum Event {
    Msg {
        msg: MsgId,
        bind: MsgBind,
        from: Option<LocalId>,
    },
    Timeout(TimerId),
    Choose {
        choice: ChoiceId,
        pat: Pat,
    },
    Request {
        /// `None`: any request, bound whole to `bind_any`.
        req: Option<ReqId>,
        args: Vec<Pat>,
        bind_any: Option<LocalId>,
        client: LocalId,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct Local {
    pub name: String,
    pub ty: Ty,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub enum Pat {
    Wildcard,
    Bind(LocalId),
    Int(i128),
    Bool(bool),
    Tuple(Vec<Pat>),
    None,
    Some(Box<Pat>),
    Enum { en: EnumId, variant: usize, args: Vec<Pat> },
    Reply { reply: ReplyId, args: Vec<Pat> },
    Request { req: ReqId, args: Vec<Pat> },
}

#[derive(Clone, Debug, Serialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Ty,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ClientAttr {
    /// The client finished its whole workload.
    Done,
    /// The client has a request in flight.
    Waiting,
    /// How many requests the client has completed.
    Completed,
    /// The client's node id.
    Id,
}

/// Built-in functions and methods. Every one is total except where noted:
/// the partial ones report a handler error instead of panicking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Builtin {
    Len,
    /// Partial: empty collection.
    Min,
    /// Partial: empty collection.
    Max,
    /// Partial: overflow.
    Sum,
    /// `len/2 + 1` of a count or collection.
    Majority,
    Sorted,
    Keys,
    Values,
    Contains,
    /// `m.get(k)` → `Option<V>`; `l.get(i)` → `Option<T>`.
    Get,
    IsSome,
    IsNone,
    /// Partial: `None`.
    Unwrap,
    UnwrapOr,
    First,
    Last,
    /// Partial: bounds.
    Slice,
    Skip,
    Take,
    Union,
    Intersect,
    Minus,
    With,
    Without,
    /// `apply(state, request)` → `(Service, Reply)`; with three arguments,
    /// `apply(state, client, request)`: through the session table.
    Apply,
    /// `c.node` of a `Client` handle.
    ClientNode,
    /// `c.session` of a `Client` handle: `(epoch, id)`.
    ClientSession,
    /// `c.seq` of a `Client` handle.
    ClientSeq,
    /// `recorded(state, client)` → `Option<Reply>`: the session table's
    /// reply to that request, if it was its session's last one applied.
    Recorded,
    /// `range(a, b)`: the integers `a, a+1, ..., b-1` as a list (partial:
    /// more than `RANGE_LEN_MAX` elements).
    Range,
}

/// The longest list `range` builds; longer is a handler error.
pub const RANGE_LEN_MAX: u64 = 1 << 20;

#[derive(Clone, Debug, Serialize)]
pub enum Binder {
    /// Every instance of a role (properties only).
    Role { local: LocalId, role: RoleId },
    /// Every client instance (properties only).
    Clients { local: LocalId },
    /// Every element of a collection; map elements are `(key, value)`.
    In { pat: Pat, iter: Expr },
}

#[derive(Clone, Debug, Serialize)]
pub enum ExprKind {
    Int(i128),
    Bool(bool),
    /// A string literal's bytes.
    Bytes(Vec<u8>),
    Const(usize),
    Local(LocalId),
    /// The handler's own role variable.
    Var(VarId),
    /// A service variable, inside a request body.
    ServiceVar(VarId),
    /// The service's initial state (`Register.initial`).
    ServiceInitial,
    SelfNode,
    /// `restarted` in an `init` block: whether this start recovers from a
    /// crash (the node started before) rather than being its first.
    Restarted,
    /// Every server node of every role.
    Servers,
    /// `servers` without `self`.
    Peers,
    /// Every node of one role.
    Members(RoleId),
    /// `self is S` inside a handler.
    SelfIs(StateId),
    /// `a.x` for a role instance bound in a property.
    InstanceVar {
        inst: LocalId,
        role: RoleId,
        var: VarId,
    },
    InstanceIs {
        inst: LocalId,
        role: RoleId,
        state: StateId,
    },
    /// A role instance used as a node id (`a == b`, `a.id`).
    InstanceId(LocalId),
    ClientAttr {
        inst: LocalId,
        attr: ClientAttr,
    },
    None,
    Some(Box<Expr>),
    Tuple(Vec<Expr>),
    /// Fields in declaration order; `None` means "taken from `base`".
    Record {
        rec: RecordId,
        fields: Vec<Option<Expr>>,
        base: Option<Box<Expr>>,
    },
    MessageLit {
        msg: MsgId,
        fields: Vec<Option<Expr>>,
        base: Option<Box<Expr>>,
    },
    EnumCtor {
        en: EnumId,
        variant: usize,
        args: Vec<Expr>,
    },
    RequestCtor {
        req: ReqId,
        args: Vec<Expr>,
    },
    ReplyCtor {
        reply: ReplyId,
        args: Vec<Expr>,
    },
    List(Vec<Expr>),
    Set(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    /// `[head | pat in iter, filters...]` and friends; a map comprehension
    /// has `head_value`.
    Compr {
        kind: crate::ast::ComprKind,
        head: Box<Expr>,
        head_value: Option<Box<Expr>>,
        pat: Pat,
        iter: Box<Expr>,
        filters: Vec<Expr>,
    },
    Quant {
        forall: bool,
        binders: Vec<Binder>,
        body: Box<Expr>,
    },
    Count {
        pat: Pat,
        iter: Box<Expr>,
        cond: Box<Expr>,
    },
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        els: Box<Expr>,
    },
    Match {
        scrutinee: Box<Expr>,
        arms: Vec<(Pat, Expr)>,
    },
    Unary {
        op: UnOp,
        expr: Box<Expr>,
    },
    /// Arithmetic is checked: overflow and division by zero are handler
    /// errors. `+`/`-` on sets are union/difference, `+` on lists concatenates.
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// Field `index` of a record or message.
    Field {
        base: Box<Expr>,
        index: usize,
    },
    TupleField {
        base: Box<Expr>,
        index: usize,
    },
    /// `m[k]` (partial: missing key) or `l[i]` (partial: out of range).
    Index {
        base: Box<Expr>,
        index: Box<Expr>,
    },
    Builtin {
        f: Builtin,
        args: Vec<Expr>,
    },
    Call {
        f: FnId,
        args: Vec<Expr>,
    },
    /// Checked integer conversion.
    Cast {
        expr: Box<Expr>,
        to: IntTy,
    },
}

#[derive(Clone, Debug, Serialize)]
pub enum TargetRoot {
    Var(VarId),
    ServiceVar(VarId),
}

#[derive(Clone, Debug, Serialize)]
pub enum TargetElem {
    Field(usize),
    TupleField(usize),
    /// Map insert-or-overwrite, or list element overwrite (partial).
    Index(Expr),
}

#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub root: TargetRoot,
    pub path: Vec<TargetElem>,
    /// The type of the assigned location.
    pub ty: Ty,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Mutation {
    /// `list.push(x)`
    Push,
    /// `list.truncate(n)`: keep the first `n` elements.
    Truncate,
    /// `list.drop_first(n)`: remove the first `n` elements (all, if fewer).
    DropFirst,
    /// `set.insert(x)` / `map.insert(k, v)`
    Insert,
    /// `set.remove(x)` / `map.remove(k)`
    Remove,
    /// `c.clear()`
    Clear,
    /// `list.extend(other)`
    Extend,
}

#[derive(Clone, Debug, Serialize)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub enum StmtKind {
    Let {
        pat: Pat,
        value: Expr,
    },
    /// `x = e`, `x[k] = e`, `x.f = e`; `x += e` arrives here as `x = x + e`.
    Assign {
        target: Target,
        value: Expr,
    },
    Mutate {
        target: Target,
        op: Mutation,
        args: Vec<Expr>,
    },
    If {
        cond: Expr,
        then: Vec<Stmt>,
        els: Vec<Stmt>,
    },
    For {
        pat: Pat,
        iter: Expr,
        body: Vec<Stmt>,
    },
    Match {
        scrutinee: Expr,
        arms: Vec<(Pat, Vec<Stmt>)>,
    },
    /// `early`: the message may leave before the handler's durable writes
    /// are on disk; the checker explores a crash between the two.
    Send {
        dst: Expr,
        msg: Expr,
        early: bool,
    },
    Broadcast {
        dsts: Expr,
        msg: Expr,
        early: bool,
    },
    Goto(StateId),
    SetTimer(TimerId),
    CancelTimer(TimerId),
    /// `reply c R(..)` in a role.
    Reply {
        client: Expr,
        value: Expr,
    },
    /// `reply R(..)` in a service request.
    ServiceReply(Expr),
    /// Tell a client to retry at another node (`to` is an `Option<Node>`).
    Redirect {
        client: Expr,
        to: Expr,
    },
    Choose {
        choice: ChoiceId,
        options: Expr,
    },
    Assert {
        cond: Expr,
        text: String,
    },
    Return,
}

#[derive(Clone, Debug, Serialize)]
pub struct Property {
    pub name: String,
    pub kind: PropertyKind,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub enum PropertyKind {
    Invariant(Expr),
    Reachable(Expr),
    Eventually(Expr),
    /// `forall binders. from ~> to`
    LeadsTo {
        binders: Vec<Binder>,
        from: Expr,
        to: Expr,
    },
    Linearizable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Network {
    UnorderedDuplicating,
    UnorderedNonDuplicating,
    Ordered,
}

impl Network {
    pub fn name(self) -> &'static str {
        match self {
            Network::UnorderedDuplicating => "unordered_duplicating",
            Network::UnorderedNonDuplicating => "unordered_nonduplicating",
            Network::Ordered => "ordered",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Mode {
    Safety,
    Liveness,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Strategy {
    Bfs,
    Dfs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Timing {
    /// Timers fire in any order at any time (the default in safety mode).
    Any,
    /// After the fault budget: no timer fires at a node with messages in
    /// flight to it, and a timer fires only if no armed timer has a declared
    /// upper bound below its lower bound (the default in liveness mode).
    PartialSynchrony,
    /// As `PartialSynchrony`, and no timer fires anywhere while any message
    /// is in flight: messages are faster than every timer.
    Synchronous,
    /// After the fault budget no timer fires at all: the run is fast enough
    /// that no timeout expires, so it must finish on messages alone (a
    /// protocol's fast path, which a redundant timer must not be holding up).
    NoTimeouts,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Expect {
    Unspecified,
    Ok,
    Violation(String),
}

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: String,
    /// Server count per role, in role order.
    pub servers: Vec<u64>,
    pub clients: u64,
    /// One expression of type `Request` per workload step, over `client_local`.
    pub workload: Vec<Expr>,
    pub client_local: LocalId,
    pub network: Network,
    pub lossy: bool,
    /// Liveness: how many messages may be dropped before the network is fair.
    pub drops: u64,
    /// Liveness: how many timer firings may break the timing model (race)
    /// before the run is calm.
    pub races: u64,
    pub crash: u64,
    /// Liveness: servers that may stop for good (`stops N`).
    pub stops: u64,
    /// `retries N`: clients resend a request after a timeout at most this
    /// many times, then give up on it (safety checks too).
    pub retries: Option<u64>,
    /// `sessions N`: this check's session-table capacity.
    pub sessions: Option<u64>,
    pub mode: Mode,
    pub symmetry: bool,
    pub max_depth: Option<u64>,
    pub max_states: Option<u64>,
    pub strategy: Strategy,
    pub threads: Option<u64>,
    pub timing: Timing,
    pub expect: Expect,
    /// A state constraint: the search does not enter states where it is
    /// false (a property expression over the global state).
    pub bound: Option<Expr>,
    /// Properties this check leaves out, by name.
    pub skip: Vec<String>,
    pub span: Span,
}

pub const SERVERS_MAX: u64 = 16;
pub const CLIENTS_MAX: u64 = 16;
/// The largest session table a service may declare (`sessions N`).
pub const SESSIONS_MAX: u64 = 1 << 20;
/// The reply a service with sessions gives to a request it refuses.
pub const REJECTED: &str = "Rejected";
/// The most resends a check may allow a client per request.
pub const RETRIES_MAX: u64 = 8;
