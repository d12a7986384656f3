//! CEL expressions over a finished [`RequestRecord`]: access-log fields and filters, metric labels
//! and rate-limit keys (`apiKey.user`, `response.code >= 400`, ...). The context is described in
//! `interface.md`: `apiKey`, `request`, `source`, `llm`, `response`.
//!
//! Label expressions run on every request, and almost all of them are a plain field path. Those
//! are resolved straight from the record (the *fast path*), without building a CEL context; only
//! other expressions go to the interpreter, which then builds only the variables the expression
//! references. Both read the record through one view ([`context`]), so they agree by
//! construction, and the tests check it.
//!
//! Compiling also rejects variables the context does not have, so a typo such as `apikey.user`
//! fails at startup instead of silently yielding no value forever.

mod context;
mod value;

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use cel::common::ast::{operators, Expr as Node, IdedExpr, LiteralValue};

use crate::record::RequestRecord;
use context::Root;
pub use value::ExprValue;

/// Names an expression may use besides the context variables and its own comprehension
/// variables: CEL type names (`type(x) == int`) and function namespaces.
const BUILTIN_IDENTS: &[&str] = &[
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
    "dyn",
    "optional",
    "google",
    "math",
    "strings",
    "base64",
];

/// The standard environment, built once: building it per evaluation would dominate the cost.
static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// A compiled CEL expression.
pub struct Expr {
    source: String,
    program: cel::Program,
    /// Set when the expression is a plain field path such as `apiKey.user` or
    /// `request.headers["x-team"]`: resolved from the record without the interpreter.
    path: Option<FieldPath>,
    /// The context variables the expression references: all the interpreter needs to build.
    roots: Vec<Root>,
    reads_headers: bool,
}

/// `root.a.b` / `root["a"]["b"]`.
#[derive(Debug, Clone, PartialEq)]
struct FieldPath {
    root: Root,
    segments: Vec<String>,
}

// === impl Expr ===

impl Expr {
    /// Compiles; the error message quotes the expression and says what is wrong.
    pub fn compile(source: &str) -> Result<Expr, String> {
        let program = cel::Program::compile(source)
            .map_err(|e| format!("invalid CEL expression `{source}`: {e}"))?;
        let ast = program.expression();
        let roots =
            referenced_roots(ast).map_err(|unknown| unknown_variable_error(source, &unknown))?;
        Ok(Expr {
            path: field_path(ast),
            reads_headers: reads_request_headers(ast),
            roots,
            source: source.to_owned(),
            program,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates against a finished record. `None` when a referenced value is missing or
    /// evaluation fails.
    pub fn eval(&self, rec: &RequestRecord) -> Option<ExprValue> {
        match &self.path {
            Some(path) => context::lookup(rec, path.root, &path.segments),
            None => self.interpret(rec),
        }
    }

    /// Filter semantics: true only when the result is the boolean true.
    pub fn eval_bool(&self, rec: &RequestRecord) -> bool {
        matches!(self.eval(rec), Some(ExprValue::Bool(true)))
    }

    /// Label/field semantics: the value rendered as a string (strings raw, numbers and bools as
    /// text, lists and maps as JSON), `None` if missing or null.
    pub fn eval_string(&self, rec: &RequestRecord) -> Option<String> {
        self.eval(rec)?.into_string()
    }

    /// True when the expression reads `request.headers` (the proxy keeps headers in the record
    /// only then).
    pub fn uses_request_headers(&self) -> bool {
        self.reads_headers
    }

    /// Whether [`Expr::eval`] skips the interpreter for this expression.
    pub fn is_fast_path(&self) -> bool {
        self.path.is_some()
    }

    /// Always evaluates with the interpreter; the fast path must give the same answer.
    fn interpret(&self, rec: &RequestRecord) -> Option<ExprValue> {
        let mut ctx = cel::Context::with_env(Arc::clone(&ENV));
        for &root in &self.roots {
            ctx.add_variable_as_val(root.name(), context::root_val(rec, root));
        }
        let value = self.program.execute(&ctx).ok()?;
        ExprValue::from_cel(&value)
    }
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expr").field(&self.source).finish()
    }
}

fn unknown_variable_error(source: &str, unknown: &str) -> String {
    let known: Vec<&str> = Root::ALL.iter().map(|r| r.name()).collect();
    format!(
        "invalid CEL expression `{source}`: unknown variable `{unknown}` (available: {})",
        known.join(", ")
    )
}

// === compile-time analysis of the AST ===

/// Visits every node of the AST, parents before children.
fn visit<'a>(node: &'a IdedExpr, f: &mut impl FnMut(&'a IdedExpr)) {
    f(node);
    match &node.expr {
        Node::Call(call) => {
            call.target.iter().for_each(|t| visit(t, f));
            call.args.iter().for_each(|a| visit(a, f));
        }
        Node::Comprehension(c) => {
            for part in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                visit(part, f);
            }
        }
        Node::List(list) => list.elements.iter().for_each(|e| visit(e, f)),
        Node::Map(map) => map.entries.iter().for_each(|e| visit_entry(&e.expr, f)),
        Node::Struct(s) => s.entries.iter().for_each(|e| visit_entry(&e.expr, f)),
        Node::Select(select) => visit(&select.operand, f),
        Node::Ident(_) | Node::Literal(_) | Node::Unspecified => {}
    }
}

fn visit_entry<'a>(entry: &'a cel::common::ast::EntryExpr, f: &mut impl FnMut(&'a IdedExpr)) {
    match entry {
        cel::common::ast::EntryExpr::StructField(field) => visit(&field.value, f),
        cel::common::ast::EntryExpr::MapEntry(entry) => {
            visit(&entry.key, f);
            visit(&entry.value, f);
        }
    }
}

/// The context variables the expression uses, or the first name that is none of: a context
/// variable, a comprehension variable, a builtin type or namespace.
fn referenced_roots(ast: &IdedExpr) -> Result<Vec<Root>, String> {
    let mut locals: HashSet<&str> = HashSet::new();
    let mut idents: Vec<&str> = Vec::new();
    visit(ast, &mut |node| match &node.expr {
        Node::Comprehension(c) => {
            locals.insert(&c.iter_var);
            locals.insert(&c.accu_var);
            locals.extend(c.iter_var2.as_deref());
        }
        Node::Ident(name) => idents.push(name),
        _ => {}
    });
    let mut roots = Vec::new();
    for name in idents {
        match Root::parse(name) {
            Some(root) if !roots.contains(&root) => roots.push(root),
            Some(_) => {}
            None if locals.contains(name)
                || name.starts_with('@')
                || BUILTIN_IDENTS.contains(&name) => {}
            None => return Err(name.to_owned()),
        }
    }
    Ok(roots)
}

/// `Some` when the whole expression is a field path on a context variable: selections
/// (`a.b`) and indexes with a string literal (`a["b"]`), nothing else.
fn field_path(ast: &IdedExpr) -> Option<FieldPath> {
    let mut segments = Vec::new();
    let mut node = ast;
    loop {
        match &node.expr {
            Node::Ident(name) => {
                segments.reverse();
                return Some(FieldPath {
                    root: Root::parse(name)?,
                    segments,
                });
            }
            Node::Select(select) if !select.test => {
                segments.push(select.field.clone());
                node = &select.operand;
            }
            Node::Call(call) if call.func_name == operators::INDEX && call.target.is_none() => {
                let [operand, key] = call.args.as_slice() else {
                    return None;
                };
                segments.push(string_literal(key)?.to_owned());
                node = operand;
            }
            _ => return None,
        }
    }
}

fn string_literal(node: &IdedExpr) -> Option<&str> {
    match &node.expr {
        Node::Literal(LiteralValue::String(s)) => Some(s.inner()),
        _ => None,
    }
}

/// Whether `request.headers` may be read. Conservative: any use of `request` other than
/// selecting a field that is not `headers` (e.g. `request["headers"]`, `has(request.headers)`,
/// passing `request` whole) counts as reading them.
fn reads_request_headers(ast: &IdedExpr) -> bool {
    let mut harmless: HashSet<u64> = HashSet::new();
    let mut request_idents: Vec<u64> = Vec::new();
    visit(ast, &mut |node| match &node.expr {
        Node::Select(select) if !select.test && select.field != "headers" => {
            if matches!(&select.operand.expr, Node::Ident(n) if n == "request") {
                harmless.insert(select.operand.id);
            }
        }
        Node::Ident(name) if name == "request" => request_idents.push(node.id),
        _ => {}
    });
    request_idents.iter().any(|id| !harmless.contains(id))
}

#[cfg(test)]
mod tests;
