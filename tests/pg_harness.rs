//! The PostgreSQL harness of util/pg.rs: the cluster tests trust that each has a
//! database of its own, reachable at its URL, and that it is gone afterwards.
//!
//! Run under `.ci/test` these use its server; under a plain `cargo test`, one this
//! process starts.

use std::process::{Child, Stdio};
use std::time::Duration;

use crate::util::pg::{self, psql};
use crate::util::wait_until;

/// How many databases named `name` the server has: 1 or 0.
fn databases_named(name: &str) -> String {
    psql(
        &pg::admin_url(),
        &format!("select count(*) from pg_database where datname = '{name}'"),
    )
}

#[test]
fn a_new_database_is_reachable_at_its_url() {
    let db = pg::database();
    assert_eq!(psql(&db.url, "select 1"), "1");
    // The URL leads to this database, not to the server's default one.
    assert_eq!(psql(&db.url, "select current_database()"), db.name);
    assert!(
        db.url.starts_with("postgres://") && db.url.ends_with(&format!("/{}", db.name)),
        "{}",
        db.url
    );
}

#[test]
fn two_databases_do_not_see_each_other() {
    let a = pg::database();
    let b = pg::database();
    assert_ne!(a.name, b.name);
    assert_ne!(a.url, b.url);
    psql(
        &a.url,
        "create table only_in_a (x int); insert into only_in_a values (7)",
    );
    assert_eq!(psql(&a.url, "select x from only_in_a"), "7");
    assert_eq!(psql(&b.url, "select to_regclass('only_in_a') is null"), "t");
    psql(&b.url, "create table only_in_b (y text)");
    assert_eq!(psql(&a.url, "select to_regclass('only_in_b') is null"), "t");
}

#[test]
fn a_dropped_test_database_is_gone() {
    let db = pg::database();
    let name = db.name.clone();
    assert_eq!(databases_named(&name), "1");
    drop(db);
    assert_eq!(databases_named(&name), "0");
}

/// Kills the psql it holds when the test ends, however it ends.
struct Session(Child);

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_test_database_is_dropped_even_with_a_connection_open() {
    // As when a test fails with its daemons still connected.
    let db = pg::database();
    let name = db.name.clone();
    let mut cmd = pg::psql_command(&db.url, "select pg_sleep(120)");
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut session = Session(cmd.spawn().expect("start psql"));
    let connected = format!("select count(*) from pg_stat_activity where datname = '{name}'");
    assert!(
        wait_until(Duration::from_secs(30), || {
            psql(&pg::admin_url(), &connected) == "1"
        }),
        "the psql session never showed up in pg_stat_activity"
    );
    drop(db);
    assert_eq!(databases_named(&name), "0");
    // Its connection was ended, so psql exits long before its sleep would.
    assert!(
        wait_until(Duration::from_secs(30), || matches!(
            session.0.try_wait(),
            Ok(Some(_))
        )),
        "the psql session outlived its database"
    );
}

#[test]
fn psql_fails_loudly_on_a_bad_statement() {
    let db = pg::database();
    let result = std::panic::catch_unwind(|| psql(&db.url, "select no_such_column"));
    let message = result.expect_err("psql did not fail on a bad statement");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("no_such_column"), "{message}");
    // A failing statement fails the whole text: nothing after it takes effect.
    let result = std::panic::catch_unwind(|| {
        psql(
            &db.url,
            "select no_such_column; create table after_the_error (x int)",
        )
    });
    assert!(result.is_err());
    assert_eq!(
        psql(&db.url, "select to_regclass('after_the_error') is null"),
        "t"
    );
}

#[test]
fn the_server_has_room_for_three_daemons_and_parallel_tests() {
    let max: u32 = psql(&pg::admin_url(), "show max_connections")
        .parse()
        .expect("a number");
    assert!(
        max >= 200,
        "max_connections is {max}, the cluster tests need 200"
    );
}
