//! The syntax tree of a `.sm` file, exactly as written, with a span on every
//! node. Nothing here is resolved: names are plain strings and the same
//! surface form (`Foo(x)`) may later turn out to be a function call, an enum
//! constructor or a reply. The checker (`check.rs`) turns this into the typed
//! IR in `ir.rs`.

use serde::Serialize;

/// A byte range in one source file. `start <= end` always holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        debug_assert!(start <= end);
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct File {
    pub protocol: Option<Ident>,
    pub items: Vec<Item>,
    /// Names declared by items or members that did not parse. The checker
    /// does not report them as unknown: the syntax error already explains.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub broken: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub enum Item {
    Const(ConstDecl),
    TypeAlias(TypeAlias),
    Record(RecordDecl),
    Enum(EnumDecl),
    Message(MessageDecl),
    Fn(FnDecl),
    Service(ServiceDecl),
    Role(RoleDecl),
    Property(PropertyDecl),
    Check(CheckDecl),
}

#[derive(Clone, Debug, Serialize)]
pub struct ConstDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct TypeAlias {
    pub name: Ident,
    pub ty: TypeExpr,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Field {
    pub name: Ident,
    pub ty: TypeExpr,
}

#[derive(Clone, Debug, Serialize)]
pub struct RecordDecl {
    pub name: Ident,
    pub fields: Vec<Field>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct EnumDecl {
    pub name: Ident,
    pub variants: Vec<Variant>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Variant {
    pub name: Ident,
    pub fields: Vec<TypeExpr>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MessageDecl {
    pub name: Ident,
    pub fields: Vec<Field>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct FnDecl {
    pub name: Ident,
    pub params: Vec<Field>,
    pub ret: TypeExpr,
    pub lets: Vec<FnLet>,
    pub body: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct FnLet {
    pub pat: Pattern,
    pub ty: Option<TypeExpr>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct TypeExpr {
    pub kind: TypeExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub enum TypeExprKind {
    Named(Ident),
    Generic(Ident, Vec<TypeExpr>),
    Tuple(Vec<TypeExpr>),
}

#[derive(Clone, Debug, Serialize)]
pub struct ServiceDecl {
    pub name: Ident,
    /// `sessions N`: the capacity of its session table, where it was declared.
    pub sessions: Option<(u128, Span)>,
    /// Further `sessions` declarations (an error).
    pub extra_sessions: Vec<Span>,
    pub vars: Vec<VarDecl>,
    pub requests: Vec<RequestDecl>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct RequestDecl {
    pub name: Ident,
    pub params: Vec<Field>,
    pub replies: Vec<ReplySig>,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReplySig {
    pub name: Ident,
    pub fields: Vec<TypeExpr>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct RoleDecl {
    pub name: Ident,
    pub vars: Vec<VarDecl>,
    pub timers: Vec<TimerDecl>,
    pub choices: Vec<ChoiceDecl>,
    pub inits: Vec<Block>,
    /// `ready when e` (at most one; more is an error).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ready: Vec<ReadyDecl>,
    /// `metric name = e`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricDecl>,
    pub states: Vec<StateDecl>,
    pub handlers: Vec<Handler>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReadyDecl {
    pub cond: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct MetricDecl {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct VarDecl {
    pub durable: bool,
    /// `ghost`: state for properties only (see `ir::Var::ghost`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ghost: bool,
    pub name: Ident,
    pub ty: TypeExpr,
    pub init: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct TimerDecl {
    pub name: Ident,
    /// Lower and upper bound of the timeout, in microseconds.
    pub min_us: u64,
    pub max_us: u64,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChoiceDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct StateDecl {
    pub name: Ident,
    pub initial: bool,
    pub entries: Vec<Block>,
    pub exits: Vec<Block>,
    pub handlers: Vec<Handler>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Handler {
    pub kind: HandlerKind,
    pub guard: Option<Expr>,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub enum HandlerKind {
    Msg {
        msg: Ident,
        binding: MsgBinding,
        from: Option<Ident>,
    },
    Timeout {
        timer: Ident,
    },
    Choose {
        choice: Ident,
        pat: Pattern,
    },
    Request {
        req: RequestPat,
        from: Ident,
    },
}

#[derive(Clone, Debug, Serialize)]
pub enum MsgBinding {
    None,
    Whole(Ident),
    Fields(Vec<Ident>),
}

#[derive(Clone, Debug, Serialize)]
pub enum RequestPat {
    Any(Ident),
    Named { name: Ident, args: Vec<Pattern> },
}

#[derive(Clone, Debug, Serialize)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum AssignOp {
    Set,
    Add,
    Sub,
}

#[derive(Clone, Debug, Serialize)]
pub enum StmtKind {
    Let {
        pat: Pattern,
        ty: Option<TypeExpr>,
        value: Expr,
    },
    Assign {
        place: Place,
        op: AssignOp,
        value: Expr,
    },
    /// `log.push(e)`: the last element of `place` names the method.
    Call {
        place: Place,
        args: Vec<Expr>,
    },
    If {
        cond: Expr,
        then: Block,
        els: Option<Box<Stmt>>,
    },
    /// The `else { ... }` of an `if`; only appears as `If::els`.
    Block(Block),
    For {
        pat: Pattern,
        iter: Expr,
        body: Block,
    },
    Match {
        scrutinee: Expr,
        arms: Vec<StmtArm>,
    },
    /// `send [early] dst msg`.
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
    Goto(Ident),
    Set(Ident),
    Cancel(Ident),
    Reply {
        target: Option<Expr>,
        value: Expr,
    },
    Redirect {
        client: Expr,
        to: Expr,
    },
    Choose {
        choice: Ident,
        options: Expr,
    },
    Assert(Expr),
    Return,
}

#[derive(Clone, Debug, Serialize)]
pub struct StmtArm {
    pub pat: Pattern,
    pub body: Block,
}

#[derive(Clone, Debug, Serialize)]
pub struct Place {
    pub base: Ident,
    pub path: Vec<PlaceElem>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub enum PlaceElem {
    Field(Ident),
    TupleIndex(u32, Span),
    Index(Expr),
}

#[derive(Clone, Debug, Serialize)]
pub struct Path {
    pub first: Ident,
    pub second: Option<Ident>,
    pub span: Span,
}

impl Path {
    pub fn display(&self) -> String {
        match &self.second {
            Some(s) => format!("{}::{}", self.first.name, s.name),
            None => self.first.name.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Pattern {
    pub kind: PatternKind,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub enum PatternKind {
    Wildcard,
    Int(u128),
    Bool(bool),
    /// A string literal; refused by the checker (compare with `==`).
    Bytes(Vec<u8>),
    Tuple(Vec<Pattern>),
    /// A constructor (`Some(x)`, `Vote::Yes`, `GetOk(v)`) or, when `path` is a
    /// single name that is not a constructor and `args` is `None`, a binding.
    Ctor {
        path: Path,
        args: Option<Vec<Pattern>>,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum BinOp {
    Implies,
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Implies => "=>",
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ComprKind {
    List,
    Set,
    Map,
}

#[derive(Clone, Debug, Serialize)]
pub enum Binder {
    /// `a, b: Server` (property quantifiers over role instances).
    Role { names: Vec<Ident>, role: Ident },
    /// `x in xs`
    In { pat: Pattern, iter: Expr },
}

#[derive(Clone, Debug, Serialize)]
pub enum ExprKind {
    Int(u128),
    Bool(bool),
    /// A string literal `"..."`, escapes decoded: a `Bytes` value.
    Bytes(Vec<u8>),
    /// A duration literal, in microseconds.
    Duration(u64),
    SelfNode,
    Path(Path),
    Call {
        path: Path,
        args: Vec<Expr>,
    },
    Record {
        name: Ident,
        fields: Vec<(Ident, Option<Expr>)>,
        base: Option<Box<Expr>>,
    },
    Tuple(Vec<Expr>),
    Paren(Box<Expr>),
    List(Vec<Expr>),
    /// `{a, b}`; also `{}`, which may turn out to be an empty map.
    Set(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Compr {
        kind: ComprKind,
        head: Box<Expr>,
        /// The value of a map comprehension `{k: v | ...}`.
        head_value: Option<Box<Expr>>,
        pat: Pattern,
        iter: Box<Expr>,
        filters: Vec<Expr>,
    },
    Quant {
        forall: bool,
        binders: Vec<Binder>,
        body: Box<Expr>,
    },
    Count {
        pat: Pattern,
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
        arms: Vec<(Pattern, Expr)>,
    },
    Unary {
        op: UnOp,
        expr: Box<Expr>,
    },
    Binary {
        op: BinOp,
        op_span: Span,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Field {
        base: Box<Expr>,
        name: Ident,
    },
    TupleIndex {
        base: Box<Expr>,
        index: u32,
        index_span: Span,
    },
    Index {
        base: Box<Expr>,
        index: Box<Expr>,
    },
    Method {
        recv: Box<Expr>,
        name: Ident,
        args: Vec<Expr>,
    },
    Cast {
        expr: Box<Expr>,
        ty: TypeExpr,
    },
    Is {
        expr: Box<Expr>,
        state: Ident,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct PropertyDecl {
    pub kind: PropertyKind,
    pub name: Option<Ident>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub enum PropertyKind {
    Invariant(Expr),
    Reachable(Expr),
    Eventually(Expr),
    LeadsTo { binders: Vec<Binder>, from: Expr, to: Expr },
    Linearizable,
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckDecl {
    pub name: Ident,
    pub entries: Vec<CheckEntry>,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckEntry {
    pub kind: CheckEntryKind,
    pub span: Span,
}

#[derive(Clone, Debug, Serialize)]
pub enum CheckEntryKind {
    Servers(u128),
    RoleCounts(Vec<(Ident, u128)>),
    Clients(u128),
    Workload(Vec<Expr>),
    Network(Ident),
    Lossy,
    Drops(u128),
    Races(u128),
    Crash(u128),
    Stops(u128),
    Retries(u128),
    Sessions(u128),
    Mode(Ident),
    Symmetry,
    MaxDepth(u128),
    MaxStates(u128),
    Strategy(Ident),
    Threads(u128),
    Timing(Ident),
    Bound(Expr),
    Skip(Vec<Ident>),
    ExpectOk,
    ExpectViolation(Ident),
    Unknown(Ident),
}
