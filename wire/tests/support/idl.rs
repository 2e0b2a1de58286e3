//! A reader for the subset of the flatbuffers IDL that `schema/*.fbs` uses (namespace, enum,
//! union, struct, table, root_type), and the append-only rule between a frozen schema and the
//! current one. It exists so `cargo test` enforces the evolution rules on every commit without
//! flatc; CI also runs `flatc --conform` (wire/regenerate.sh). Anything outside that subset is a
//! parse error, so a schema that starts using new syntax fails loudly rather than going
//! unchecked.

use std::collections::BTreeMap;

/// One field of a table or struct, in declaration order (its position is its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// `uint`, `Key`, `[ubyte]`.
    pub ty: String,
    /// The literal after `=`, if any.
    pub default: Option<String>,
    pub required: bool,
    pub deprecated: bool,
}

/// The declarations of one schema file.
#[derive(Debug, Default, Clone)]
pub struct Schema {
    pub namespace: String,
    pub root_type: String,
    /// Name → (underlying type, members with their values in order).
    pub enums: BTreeMap<String, (String, Vec<(String, i64)>)>,
    pub unions: BTreeMap<String, Vec<String>>,
    pub structs: BTreeMap<String, Vec<Field>>,
    pub tables: BTreeMap<String, Vec<Field>>,
}

/// Splits `text` into identifiers, literals and punctuation, dropping `//` comments.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut word = String::new();
        for c in code.chars() {
            if c.is_alphanumeric() || matches!(c, '_' | '.' | '-') {
                word.push(c);
                continue;
            }
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
        }
        if !word.is_empty() {
            out.push(word);
        }
    }
    out
}

struct Parser {
    tokens: Vec<String>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Result<String, String> {
        let t = self.tokens.get(self.at).cloned().ok_or("unexpected end of schema")?;
        self.at += 1;
        Ok(t)
    }

    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn expect(&mut self, want: &str) -> Result<(), String> {
        let got = self.next()?;
        if got == want { Ok(()) } else { Err(format!("expected `{want}`, found `{got}` at token {}", self.at)) }
    }

    /// `{ A = 0, B, }`: enum members, values counting up from the last explicit one.
    fn enum_body(&mut self) -> Result<Vec<(String, i64)>, String> {
        self.expect("{")?;
        let mut members = Vec::new();
        let mut value = 0i64;
        while self.peek() != Some("}") {
            let name = self.next()?;
            if self.peek() == Some("=") {
                self.next()?;
                let literal = self.next()?;
                value = literal.parse().map_err(|_| format!("enum value `{literal}` is not an integer"))?;
            }
            members.push((name, value));
            value += 1;
            if self.peek() == Some(",") {
                self.next()?;
            }
        }
        self.expect("}")?;
        Ok(members)
    }

    /// `{ f: T = d (attr, attr: v); ... }`.
    fn fields(&mut self) -> Result<Vec<Field>, String> {
        self.expect("{")?;
        let mut fields = Vec::new();
        while self.peek() != Some("}") {
            let name = self.next()?;
            self.expect(":")?;
            let mut ty = self.next()?;
            if ty == "[" {
                ty = format!("[{}]", self.next()?);
                self.expect("]")?;
            }
            let mut field = Field { name, ty, default: None, required: false, deprecated: false };
            if self.peek() == Some("=") {
                self.next()?;
                field.default = Some(self.next()?);
            }
            if self.peek() == Some("(") {
                self.next()?;
                while self.peek() != Some(")") {
                    match self.next()?.as_str() {
                        "required" => field.required = true,
                        "deprecated" => field.deprecated = true,
                        "," => {}
                        other => return Err(format!("field {}: unsupported attribute `{other}`", field.name)),
                    }
                }
                self.expect(")")?;
            }
            self.expect(";")?;
            fields.push(field);
        }
        self.expect("}")?;
        Ok(fields)
    }
}

/// Parses `text`, or says where it left the supported subset.
pub fn parse(text: &str) -> Result<Schema, String> {
    let mut p = Parser { tokens: tokens(text), at: 0 };
    let mut schema = Schema::default();
    while let Some(keyword) = p.peek().map(str::to_owned) {
        p.next()?;
        match keyword.as_str() {
            "namespace" => {
                schema.namespace = p.next()?;
                p.expect(";")?;
            }
            "root_type" => {
                schema.root_type = p.next()?;
                p.expect(";")?;
            }
            "enum" => {
                let name = p.next()?;
                p.expect(":")?;
                let ty = p.next()?;
                let members = p.enum_body()?;
                schema.enums.insert(name, (ty, members));
            }
            "union" => {
                let name = p.next()?;
                let members = p.enum_body()?.into_iter().map(|(m, _)| m).collect();
                schema.unions.insert(name, members);
            }
            "struct" => {
                let name = p.next()?;
                let fields = p.fields()?;
                schema.structs.insert(name, fields);
            }
            "table" => {
                let name = p.next()?;
                let fields = p.fields()?;
                schema.tables.insert(name, fields);
            }
            other => return Err(format!("unsupported declaration `{other}`")),
        }
    }
    Ok(schema)
}

/// Every way `current` fails to be an append-only evolution of `frozen`; empty when it is one.
pub fn violations(frozen: &Schema, current: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    if frozen.namespace != current.namespace {
        out.push(format!("namespace changed from {} to {}", frozen.namespace, current.namespace));
    }
    if frozen.root_type != current.root_type {
        out.push(format!("root_type changed from {} to {}", frozen.root_type, current.root_type));
    }
    for (name, (ty, members)) in &frozen.enums {
        match current.enums.get(name) {
            None => out.push(format!("enum {name} is gone")),
            Some((now_ty, _)) if now_ty != ty => out.push(format!("enum {name} changed type from {ty} to {now_ty}")),
            Some((_, now)) if !now.starts_with(members) => {
                out.push(format!("enum {name}: values {members:?} are not a prefix of {now:?}"))
            }
            Some(_) => {}
        }
    }
    for (name, members) in &frozen.unions {
        match current.unions.get(name) {
            None => out.push(format!("union {name} is gone")),
            Some(now) if !now.starts_with(members) => {
                out.push(format!("union {name}: members {members:?} are not a prefix of {now:?}"))
            }
            Some(_) => {}
        }
    }
    for (name, fields) in &frozen.structs {
        if current.structs.get(name) != Some(fields) {
            out.push(format!("struct {name} changed or is gone (structs never change)"));
        }
    }
    for (name, fields) in &frozen.tables {
        let Some(now) = current.tables.get(name) else {
            out.push(format!("table {name} is gone"));
            continue;
        };
        out.extend(table_violations(name, fields, now));
    }
    out
}

fn table_violations(table: &str, frozen: &[Field], now: &[Field]) -> Vec<String> {
    let mut out = Vec::new();
    if now.len() < frozen.len() {
        out.push(format!("table {table} lost fields ({} of {} left)", now.len(), frozen.len()));
    }
    for (id, (old, new)) in frozen.iter().zip(now).enumerate() {
        let same = old.name == new.name && old.ty == new.ty && old.default == new.default;
        if !same || old.required != new.required {
            out.push(format!("{table} field {id} changed from {old:?} to {new:?}"));
        }
        if old.deprecated && !new.deprecated {
            out.push(format!("{table}.{} was deprecated and is back", old.name));
        }
    }
    for new in now.iter().skip(frozen.len()).filter(|f| f.required) {
        out.push(format!("{table}.{} is appended as (required); old peers never send it", new.name));
    }
    out
}
