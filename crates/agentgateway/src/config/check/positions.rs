//! Where each field of a YAML document is written: a map from [`FieldPath`] to the line and
//! column of its key and of its value, built from the span-carrying event stream of
//! `saphyr-parser` (serde's YAML deserializer keeps no positions once a value is built).
//!
//! A path that is not in the document (a required field left out) is placed at its nearest
//! ancestor that is, so every problem still points somewhere useful.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, Span};

use super::path::FieldPath;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, column: 1 };

    fn of(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Node {
    key: Option<Pos>,
    value: Pos,
}

/// The positions of every node of a document's first YAML document.
#[derive(Debug, Default)]
pub struct Positions {
    nodes: HashMap<FieldPath, Node>,
    /// Whether the whole text parsed (no YAML syntax error).
    complete: bool,
}

enum Frame {
    Mapping {
        path: FieldPath,
        /// The key just read, waiting for its value.
        key: Option<(String, Pos)>,
    },
    Sequence {
        path: FieldPath,
        next: usize,
    },
    /// A complex (non-scalar) mapping key: its contents have no field path.
    Skip,
}

impl Positions {
    /// Maps `text`; a YAML syntax error returns what was mapped before it (the caller reports
    /// the syntax error itself, from the real parser).
    pub fn parse(text: &str) -> Positions {
        let mut builder = Builder::default();
        builder.positions.complete = true;
        for event in Parser::new_from_str(text) {
            let Ok((event, span)) = event else {
                builder.positions.complete = false;
                break;
            };
            if !builder.event(event, &span) {
                break;
            }
        }
        builder.positions
    }

    /// Where the problem at `path` should point: the key for `at_key`, else the value; a path
    /// missing from the document points at its closest present ancestor's value.
    pub fn locate(&self, path: &FieldPath, at_key: bool) -> Pos {
        if let Some(node) = self.nodes.get(path) {
            return match (at_key, node.key) {
                (true, Some(key)) => key,
                _ => node.value,
            };
        }
        let mut current = path.parent();
        while let Some(ancestor) = current {
            if let Some(node) = self.nodes.get(&ancestor) {
                return node.value;
            }
            current = ancestor.parent();
        }
        Pos::START
    }

    pub fn contains(&self, path: &FieldPath) -> bool {
        self.nodes.contains_key(path)
    }

    pub fn complete(&self) -> bool {
        self.complete
    }

    /// The innermost field whose value starts on `line` (the rightmost one), if any.
    pub fn path_at_line(&self, line: usize) -> Option<FieldPath> {
        self.nodes
            .iter()
            .filter(|(_, node)| node.value.line == line)
            .max_by_key(|(path, node)| (node.value.column, path.segments().len()))
            .map(|(path, _)| path.clone())
    }
}

#[derive(Default)]
struct Builder {
    positions: Positions,
    stack: Vec<Frame>,
    done: bool,
}

impl Builder {
    /// Takes one event; `false` once the first document is complete.
    fn event(&mut self, event: Event<'_>, span: &Span) -> bool {
        match event {
            Event::Scalar(text, ..) => {
                if let Some((path, key)) = self.node_start(Some(&text), span) {
                    self.record(path, key, span);
                }
            }
            Event::Alias(_) => {
                if let Some((path, key)) = self.node_start(None, span) {
                    self.record(path, key, span);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(event, Event::MappingStart(..));
                let frame = match self.node_start(None, span) {
                    Some((path, key)) => {
                        self.record(path.clone(), key, span);
                        if is_map {
                            Frame::Mapping { path, key: None }
                        } else {
                            Frame::Sequence { path, next: 0 }
                        }
                    }
                    None => Frame::Skip,
                };
                self.stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.done = self.stack.is_empty();
            }
            Event::DocumentEnd => self.done = true,
            _ => {}
        }
        !self.done
    }

    /// A node begins: its path and its key's position, or `None` when it is a mapping key (a
    /// scalar key is remembered for the value that follows) or inside a skipped subtree.
    fn node_start(
        &mut self,
        scalar: Option<&str>,
        span: &Span,
    ) -> Option<(FieldPath, Option<Pos>)> {
        match self.stack.last_mut() {
            None => Some((FieldPath::root(), None)),
            Some(Frame::Skip) => None,
            Some(Frame::Sequence { path, next }) => {
                let path = path.index(*next);
                *next += 1;
                Some((path, None))
            }
            Some(Frame::Mapping { path, key }) => match key.take() {
                Some((name, key_pos)) => Some((path.key(&name), Some(key_pos))),
                None => {
                    // A complex key (mapping or sequence) gets a placeholder, so its value
                    // still pairs with it.
                    *key = Some((scalar.unwrap_or("?").to_owned(), Pos::of(span)));
                    None
                }
            },
        }
    }

    fn record(&mut self, path: FieldPath, key: Option<Pos>, span: &Span) {
        // With a repeated key the first one stays: that is where a reader looks first.
        self.positions.nodes.entry(path).or_insert(Node {
            key,
            value: Pos::of(span),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
config:
  metrics:
    fields:
      add: {user: 'apiKey.user'}
llm:
  port: abc
  models:
  - name: a
    provider: openAI
  - name: b
    parms:
      baseUrl: x
";

    fn at(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn keys_and_values_of_block_and_flow_nodes() {
        let positions = Positions::parse(DOC);
        let port = FieldPath::of("llm.port");
        assert_eq!(positions.locate(&port, true), at(6, 3));
        assert_eq!(positions.locate(&port, false), at(6, 9));
        let user = FieldPath::of("config.metrics.fields.add.user");
        assert_eq!(positions.locate(&user, true), at(4, 13));
        assert_eq!(positions.locate(&user, false), at(4, 19));
    }

    #[test]
    fn sequence_items_are_indexed() {
        let positions = Positions::parse(DOC);
        let models = FieldPath::of("llm.models");
        assert_eq!(
            positions.locate(&models.index(0).key("provider"), false),
            at(9, 15)
        );
        assert_eq!(
            positions.locate(&models.index(1).key("parms"), true),
            at(11, 5)
        );
        let base = models.index(1).key("parms").key("baseUrl");
        assert_eq!(positions.locate(&base, true), at(12, 7));
    }

    #[test]
    fn a_missing_path_points_at_its_closest_ancestor() {
        let positions = Positions::parse(DOC);
        let missing = FieldPath::of("llm.models").index(1).key("provider");
        assert!(!positions.contains(&missing));
        assert_eq!(positions.locate(&missing, false), at(10, 5));
        assert_eq!(
            positions.locate(&FieldPath::of("nope.deeper"), false),
            at(1, 1)
        );
    }

    #[test]
    fn a_syntax_error_keeps_what_came_before() {
        let positions = Positions::parse("llm:\n  port: 1\n  bad: [\n");
        assert!(!positions.complete());
        assert_eq!(
            positions.locate(&FieldPath::of("llm.port"), false),
            at(2, 9)
        );
        assert!(Positions::parse(DOC).complete());
    }

    #[test]
    fn the_field_on_a_line() {
        let positions = Positions::parse(DOC);
        assert_eq!(positions.path_at_line(6), Some(FieldPath::of("llm.port")));
        let user = FieldPath::of("config.metrics.fields.add.user");
        assert_eq!(positions.path_at_line(4), Some(user));
        assert_eq!(positions.path_at_line(99), None);
    }
}
