//! A `catalog.json` that does not parse as written stops nacred at start, naming the file, the
//! field and the value, and changes nothing: fixed, the same data directory starts again with
//! its data. (It once fell back to the default tie rule, which changes which values win.)

use nacre_tests::server::Server;
use nacre_wire::{Get, Key, Put, TableSettings};
use std::time::Duration;

#[test]
fn a_misspelt_tie_rule_in_the_catalog_fails_startup_naming_file_field_and_value() {
    let mut server = Server::start();
    let runtime = nacre_tests::runtime();
    runtime.block_on(async {
        let client = server.client().await;
        client.create_table("features", TableSettings::default()).await.expect("create_table");
        client.put(Put::new("features", Key::new("k", ""), "v")).await.expect("put");
    });
    assert!(server.sigterm_and_wait(Duration::from_secs(30)).success());
    let path = server.data_dir().join("catalog.json");
    let good = std::fs::read_to_string(&path).expect("catalog.json");
    assert!(good.contains("\"stream\""), "the catalog names the tie rule's kinds: {good}");
    std::fs::write(&path, good.replacen("\"stream\"", "\"strem\"", 1)).expect("write");

    server.spawn();
    let status = server.wait_exit(Duration::from_secs(30));
    assert!(!status.success(), "nacred started on a misspelt catalog");
    let log = server.log_tail();
    for part in ["catalog.json", "tables.features.tie_rule", "strem"] {
        assert!(log.contains(part), "the refusal does not name {part}:\n{log}");
    }

    std::fs::write(&path, good).expect("write");
    server.restart();
    runtime.block_on(async {
        let row = server.client().await.get(Get::new("features", Key::new("k", ""))).await.expect("get");
        assert_eq!(row.map(|r| r.value), Some(b"v".to_vec()));
    });
}
