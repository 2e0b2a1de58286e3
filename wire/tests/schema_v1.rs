//! Protocol version 1 is frozen: `schema/v1/nacre.fbs` never changes, and the current schema
//! only appends to it (FORMAT.md, "Schema evolution"). These tests run on every commit without
//! flatc; CI's `wire/check-generated.sh` also runs `flatc --conform` on the pair.

#[path = "support/idl.rs"]
mod idl;

use xxhash_rust::xxh3::xxh3_64;

/// The frozen v1 schema, byte for byte as released.
const V1: &str = include_str!("../schema/v1/nacre.fbs");
/// The schema this build speaks.
const CURRENT: &str = include_str!("../schema/nacre.fbs");

/// xxh3-64 of `schema/v1/nacre.fbs` as released. NEVER EDIT THIS CONSTANT: a v1 client in the
/// field was built from exactly those bytes. If this test fails, restore the file from git
/// (`git checkout <release> -- wire/schema/v1/nacre.fbs`); a change belongs in
/// `schema/nacre.fbs`, appended under the evolution rules.
const V1_SCHEMA_XXH3: u64 = 0xba81_448b_9027_d6d6;

#[test]
fn the_v1_schema_is_frozen() {
    let actual = xxh3_64(V1.as_bytes());
    assert_eq!(
        actual, V1_SCHEMA_XXH3,
        "wire/schema/v1/nacre.fbs changed (xxh3 {actual:#018x}); the frozen v1 schema must never be edited"
    );
}

#[test]
fn the_current_schema_only_appends_to_v1() {
    let v1 = idl::parse(V1).expect("the v1 schema parses");
    let current = idl::parse(CURRENT).expect("the current schema parses");
    let broken = idl::violations(&v1, &current);
    assert!(broken.is_empty(), "schema/nacre.fbs breaks protocol version 1:\n{}", broken.join("\n"));
}

/// The reader sees the whole schema, so the check above compares something.
#[test]
fn the_reader_sees_every_declaration() {
    let v1 = idl::parse(V1).expect("the v1 schema parses");
    assert_eq!(v1.namespace, "nacre.wire");
    assert_eq!(v1.root_type, "Request");
    assert_eq!(v1.unions["RequestBody"].len(), 14);
    assert_eq!(v1.unions["ResponseBody"].len(), 13);
    assert_eq!(v1.enums["ErrorCode"].1.last(), Some(&("ShuttingDown".to_owned(), 18)));
    assert_eq!(v1.structs.len(), 2);
    let put = &v1.tables["Put"];
    let names: Vec<&str> = put.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["table", "partition_key", "sort_key", "value", "ts", "ttl_ms", "durability"]);
    assert!(put[0].required && !put[2].required);
    assert_eq!(put[4].default.as_deref(), Some("null"));
}

/// Each edit the evolution rules forbid is caught, and the ones they allow pass.
#[test]
fn the_append_only_check_catches_each_forbidden_edit() {
    let v1 = idl::parse(V1).expect("the v1 schema parses");
    let put_tail = "  durability: Durability = Default;\n}\n\ntable Delete";
    let allowed = [
        ("a field appended", V1.replace(put_tail, &put_tail.replacen(";\n}", ";\n  extra: uint;\n}", 1))),
        ("a field deprecated", V1.replace("  reverse: bool;", "  reverse: bool (deprecated);")),
        ("an enum value appended", V1.replace("  ShuttingDown = 18,\n", "  ShuttingDown = 18,\n  Later = 19,\n")),
        ("a union member appended", V1.replace("  Versions,\n  GetStats,\n}", "  Versions,\n  GetStats,\n  Later,\n}")),
    ];
    for (edit, text) in allowed {
        assert_ne!(text, V1, "{edit}: the edit applies");
        let broken = idl::violations(&v1, &idl::parse(&text).expect("parses"));
        assert!(broken.is_empty(), "{edit} is allowed, but: {broken:?}");
    }
    let forbidden = [
        ("a field removed", V1.replace(put_tail, &put_tail.replace("  durability: Durability = Default;\n", ""))),
        ("a field retyped", V1.replace("  limit: uint;", "  limit: ulong;")),
        ("a field renamed", V1.replace("  reverse: bool;", "  descending: bool;")),
        ("a default changed", V1.replace("max_versions: uint = 3;", "max_versions: uint = 4;")),
        (
            "a field made required",
            V1.replace("  /// Absent means empty.\n  value: [ubyte];", "  value: [ubyte] (required);"),
        ),
        (
            "a required field appended",
            V1.replace(put_tail, &put_tail.replacen(";\n}", ";\n  x: [ubyte] (required);\n}", 1)),
        ),
        ("the last union member removed", V1.replace("  Versions,\n  GetStats,\n}", "  Versions,\n}")),
        ("union members reordered", V1.replace("  Versions,\n  GetStats,\n}", "  GetStats,\n  Versions,\n}")),
        ("the last enum value removed", V1.replace("  ShuttingDown = 18,\n", "")),
        ("an enum value renumbered", V1.replace("  Async = 2,", "  Async = 3,")),
        ("a struct changed", V1.replace("  source_id: uint;", "  source_id: ulong;")),
        ("the namespace changed", V1.replace("namespace nacre.wire;", "namespace nacre.wire.v2;")),
        ("a table removed", V1.replace("table GetStats {}", "")),
    ];
    for (edit, text) in forbidden {
        assert_ne!(text, V1, "{edit}: the edit applies");
        let broken = idl::violations(&v1, &idl::parse(&text).expect("parses"));
        assert!(!broken.is_empty(), "{edit} must be refused");
    }
}
