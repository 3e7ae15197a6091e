//! `newswatch check`: the shipped config is valid, and broken configs are reported
//! with file, key and reason, every error at once (also by `scan`).

use crate::util::{default_config, newswatch, run, temp_config};

#[test]
fn shipped_config_is_valid() {
    let out = run(newswatch()
        .arg("check")
        .arg("--config")
        .arg(default_config()));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("ok"), "{}", out.stdout);
}

#[test]
fn shipped_dictionary_covers_the_war() {
    let text = std::fs::read_to_string(default_config()).unwrap();
    let config = newswatch::config::parse_str(&text, &default_config()).expect("valid");
    assert!(
        config.entities.len() >= 40,
        "only {} entities",
        config.entities.len()
    );
    for id in [
        "putin", "zelensky", "witkoff", "trump", "ukraine", "russia", "donetsk", "nato", "kremlin",
    ] {
        assert!(config.entities.iter().any(|e| e.id == id), "no entity {id}");
    }
    assert!(config.topics.iter().any(|t| t.id == "ceasefire-talks"));
}

#[test]
fn check_is_also_the_default_config_when_none_is_given() {
    // With no --config and no NEWSWATCH_CONFIG, the repo's config/newswatch.toml is used.
    let out = run(newswatch().arg("check").current_dir(crate::util::root()));
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn environment_overrides_a_key() {
    let (_dir, path) = temp_config("[poller]\ninterval = \"5m\"\n");
    let out = run(newswatch()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .env("NEWSWATCH__POLLER__INTERVAL", "soon"));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("poller.interval"), "{}", out.stderr);
    assert!(out.stderr.contains("\"soon\""), "{}", out.stderr);

    let out = run(newswatch()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .env("NEWSWATCH__POLLER__INTERVAL", "90s"));
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn unknown_keys_are_errors_naming_where_they_came_from() {
    let (_dir, path) = temp_config("[poller]\nintervall = \"5m\"\n[[feeds]]\nurl = \"https://example.org/rss\"\nnmae = \"x\"\n");
    let out = run(newswatch()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .env("NEWSWATCH__STORAGE__PATHH", "/tmp/x"));
    assert_eq!(out.code, 2);
    let file = path.display().to_string();
    assert!(
        out.stderr
            .contains(&format!("{file}: poller.intervall: unknown key")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("{file}: feeds[0].nmae: unknown key")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("NEWSWATCH__STORAGE__PATHH"),
        "{}",
        out.stderr
    );
}

/// One config with errors of every kind (values, unknown keys, duplicates, unknown
/// references, bad regexes and queries): `check` and `scan` each name every one, with
/// file and key, in one run, count them, and `scan` prints no items.
#[test]
fn a_config_with_many_errors_reports_all_of_them_in_one_run() {
    let (_dir, path) = temp_config(
        r#"
[storage]
history = "a week"
[poller]
max_body = "lots"
intervall = "5m"
[cleaning]
drop_lines = ["(unclosed"]
[[entities]]
id = "putin"
kind = "person"
name = "Vladimir Putin"
[[entities]]
id = "vlad"
kind = "robot"
name = "Other"
aliases = ["Vladimir Putin"]
[[entities]]
id = "putin"
kind = "place"
name = "Putin Town"
[[sinks]]
id = "hook"
kind = "webhook"
[[sinks]]
id = "pager"
kind = "carrier-pigeon"
[[sinks]]
id = "log"
kind = "log"
[[topics]]
id = "t"
query = "ceasefire NEAR/5 @putn"
sinks = ["nowhere"]
[[topics]]
id = "t"
query = "truce"
sinks = ["nowhere"]
"#,
    );
    let file = path.display().to_string();
    // `<file>: <key>: <reason>`, the reason as written here.
    let exact = [
        "storage.history: \"a week\" is not a duration",
        "poller.max_body: \"lots\" is not a size",
        "cleaning.drop_lines[0]: bad regex",
        "entities[2].id: duplicate id \"putin\"",
        "entities[1].kind: \"robot\" is not one of",
        "entities[1].aliases[0]: \"Vladimir Putin\" is already an alias of entity \"putin\"",
        "sinks[0].url: a webhook sink needs a url",
        "topics[0].query: topic \"t\": column 18: unknown entity @putn",
        "topics[0].sinks[0]: unknown sink \"nowhere\"",
    ];
    // `<file>: <key>: ` on a line that says `<word>`.
    let named = [
        ("poller.intervall", "unknown key"),
        ("sinks[1].kind", "carrier-pigeon"),
        ("topics[1].id", "duplicate"),
        ("topics[1].sinks[0]", "nowhere"),
    ];
    let good = crate::util::fixture("multi-article.txt");
    for (what, out) in [
        (
            "check",
            run(newswatch().arg("check").arg("--config").arg(&path)),
        ),
        (
            "scan",
            run(newswatch()
                .arg("scan")
                .arg("--config")
                .arg(&path)
                .arg(&good)),
        ),
    ] {
        assert_ne!(out.code, 101, "{what} panicked:\n{}", out.stderr);
        assert!(
            !out.stderr.contains("panicked") && !out.stderr.contains("overflowed its stack"),
            "{what} crashed:\n{}",
            out.stderr
        );
        assert_eq!(out.code, 2, "{what}: {}", out.stderr);
        for expected in exact {
            let expected = format!("{file}: {expected}");
            assert!(
                out.stderr.contains(&expected),
                "{what}: missing {expected:?} in:\n{}",
                out.stderr
            );
        }
        for (key, reason) in named {
            let prefix = format!("{file}: {key}: ");
            assert!(
                out.stderr
                    .lines()
                    .any(|l| l.contains(&prefix) && l.contains(reason)),
                "{what}: missing \"{prefix}…{reason}…\" in:\n{}",
                out.stderr
            );
        }
        assert!(out.stderr.contains("13 errors"), "{what}: {}", out.stderr);
        assert!(out.items.is_empty(), "{what} printed items");
    }
}

#[test]
fn a_missing_config_file_is_named() {
    let out = run(newswatch()
        .arg("check")
        .arg("--config")
        .arg("/nonexistent/newswatch.toml"));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("/nonexistent/newswatch.toml: cannot read"),
        "{}",
        out.stderr
    );
}

#[test]
fn errors_in_a_multi_line_query_give_its_line_and_column() {
    let (_dir, path) = temp_config(
        r#"
[[entities]]
id = "putin"
name = "Vladimir Putin"
kind = "person"
aliases = ["Putin"]
[[topics]]
id = "t"
query = """
ceasefire
AND (@putin OR @zelenskyy)
"""
[[topics]]
id = "u"
query = """
(truce
OR armistice
"""
"#,
    );
    let out = run(newswatch().arg("check").arg("--config").arg(&path));
    assert_eq!(out.code, 2, "{}", out.stderr);
    for expected in [
        "topics[0].query: topic \"t\": line 2, column 16: unknown entity @zelenskyy",
        "topics[1].query: topic \"u\": line 1, column 1:",
    ] {
        assert!(
            out.stderr.contains(expected),
            "missing {expected:?} in:\n{}",
            out.stderr
        );
    }
}

#[test]
fn a_type_error_names_its_key_like_the_other_errors() {
    let (_dir, path) = temp_config(
        r#"
[poller]
interval = "5m"
[[feeds]]
url = "http://127.0.0.1:9/a.xml"
name = "A"
[[feeds]]
url = "http://127.0.0.1:9/b.xml"
name = ["not", "a", "string"]
"#,
    );
    let out = run(newswatch().arg("check").arg("--config").arg(&path));
    assert_eq!(out.code, 2, "{}", out.stderr);
    let expected = format!(
        "{}: feeds[1].name: must be text in quotes, found an array",
        path.display()
    );
    assert!(
        out.stderr.contains(&expected),
        "missing {expected:?} in:\n{}",
        out.stderr
    );
}

/// Values that would switch a guard off or mean something else than written: each is
/// an error naming the key, and the environment's text values are not mistaken for
/// them.
#[test]
fn values_that_switch_a_guard_off_or_are_not_what_was_meant_are_errors() {
    let cases = [
        (
            "[poller]\nmax_body = \"999999999999999TiB\"\n",
            "poller.max_body",
            "larger than the most allowed",
        ),
        ("[storage]\npath = 5\n", "storage.path", "must be text"),
        (
            "[cleaning]\nsplit_on = ['']\n",
            "cleaning.split_on[0]",
            "empty line",
        ),
        (
            "[cleaning]\ndrop_lines = ['^\\s*$']\n",
            "cleaning.drop_lines[0]",
            "empty line",
        ),
        (
            "[feeds]\nurl = \"https://example.org/rss.xml\"\n",
            "feeds:",
            "[[feeds]]",
        ),
        (
            "[[entities]]\nid = \"e\"\nkind = \"place\"\nname = \"E\"\naliases = [\"E\", 7]\n",
            "entities[0].aliases[1]",
            "must be text",
        ),
        (
            "[[topics]]\nid = \"t\"\nquery = \"talks\"\nupdates = true\ngrow_by = 0\n",
            "topics[0].grow_by",
            "from 1 to 10000, not 0",
        ),
        (
            "[[topics]]\nid = \"t\"\nquery = \"talks\"\nupdates = true\nupdate_interval = \"soon\"\n",
            "topics[0].update_interval",
            "is not a duration",
        ),
        (
            "[[topics]]\nid = \"t\"\nquery = \"talks\"\nupdates = true\nupdate_interval = 5\n",
            "topics[0].update_interval",
            "must be text in quotes",
        ),
    ];
    for (text, key, why) in cases {
        refused(text, key, why);
    }
    // The same key set from the environment is text, and fine.
    let (_dir, path) = temp_config("[poller]\nmax_body = \"8MiB\"\n");
    let out = run(newswatch()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .env("NEWSWATCH__STORAGE__PATH", "5"));
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// An interval under the poller's floor of one minute was silently raised to it;
/// now `check` names the key and the floor. `[health]` thresholds and its sink are
/// checked too.
#[test]
fn an_interval_under_the_floor_and_bad_health_keys_are_errors() {
    let cases = [
        ("[poller]\ninterval = \"30s\"\n", "poller.interval", "30s is shorter than the poller's floor of 1m"),
        (
            "[[feeds]]\nurl = \"https://example.org/a.xml\"\n[[feeds]]\nurl = \"https://example.org/b.xml\"\ninterval = \"10s\"\n",
            "feeds[1].interval",
            "floor of 1m",
        ),
        ("[health]\nsink = \"pager\"\n", "health.sink", "unknown sink \"pager\""),
        (
            "[[sinks]]\nid = \"log\"\nkind = \"log\"\n[health]\nsink = \"pager\"\n",
            "health.sink",
            "(the config has: log)",
        ),
        ("[health]\nfailing_after = 0\n", "health.failing_after", "at least 1"),
        ("[health]\ngone_after = \"soon\"\n", "health.gone_after", "not a duration"),
        ("[health]\nstale_after = 3\n", "health.stale_after", "unknown key"),
        ("[health]\nsink = 5\n", "health.sink", "must be text"),
    ];
    for (text, key, why) in cases {
        refused(text, key, why);
    }
    // The floor itself, and a sink that exists, are fine.
    let (_dir, path) = temp_config(
        "[poller]\ninterval = \"1m\"\n[[sinks]]\nid = \"log\"\nkind = \"log\"\n\
         [health]\nsink = \"log\"\nfailing_after = 5\nstale_after_gaps = 3\n\
         stale_at_least = \"12h\"\ngone_after = \"3d\"\n",
    );
    let out = run(newswatch().arg("check").arg("--config").arg(&path));
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The environment overrides [health] keys as any other.
    let out = run(newswatch()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .env("NEWSWATCH__HEALTH__SINK", "nowhere"));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("health.sink: unknown sink \"nowhere\""),
        "{}",
        out.stderr
    );
}

#[test]
fn a_postgres_store_is_checked_for_its_url_and_never_takes_a_password_from_the_file() {
    let cases = [
        (
            "[storage]\nbackend = \"postgres\"\n",
            "storage.url",
            "is required with backend = \"postgres\"",
        ),
        (
            "[storage]\nbackend = \"postgres\"\nurl = \"postgres://nw:hunter2@db.example.org/nw\"\n",
            "storage.url",
            "must not hold a password",
        ),
        (
            "[storage]\nbackend = \"postgres\"\nurl = \"mysql://db.example.org/nw\"\n",
            "storage.url",
            "must be a postgres:// URL",
        ),
        (
            "[storage]\nbackend = \"postgres\"\nurl = \"postgres://db.example.org/nw\"\nlease = \"0s\"\n",
            "storage.lease",
            "longer than zero",
        ),
        (
            "[storage]\nbackend = \"cassandra\"\n",
            "storage.backend",
            "\"sled\" (the default) or \"postgres\"",
        ),
        (
            "[storage]\nurl = \"postgres://db.example.org/nw\"\n",
            "storage.url",
            "only read with backend = \"postgres\"",
        ),
    ];
    for (text, key, why) in cases {
        let out = refused(text, key, why);
        assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    }
}

/// `check` on a cluster's config says whether the database answers and at which
/// schema version, and fails naming the database when it does not.
#[test]
fn check_says_whether_the_cluster_database_is_reachable_and_its_schema_version() {
    let db = crate::util::pg::database();
    let config = |url: &str| format!("[storage]\nbackend = \"postgres\"\nurl = \"{url}\"\n");
    let (_dir, path) = temp_config(&config(&db.url));
    let fresh = run(newswatch().arg("check").arg("--config").arg(&path));
    assert_eq!(fresh.code, 0, "{}", fresh.stderr);
    assert!(
        fresh.stdout.contains("reachable, no newswatch schema yet"),
        "{}",
        fresh.stdout
    );
    // `check` does not migrate: the database is still empty.
    assert_eq!(
        crate::util::pg::psql(&db.url, "SELECT to_regclass('schema_migrations') IS NULL"),
        "t"
    );
    let listed = run(newswatch().arg("items").arg("--config").arg(&path));
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let migrated = run(newswatch().arg("check").arg("--config").arg(&path));
    assert!(
        migrated.stdout.contains(&format!(
            "{}: reachable, schema version {}",
            db.url,
            newswatch::store::postgres::schema::VERSION
        )),
        "{}",
        migrated.stdout
    );
    let missing = format!("{}_missing", db.url);
    let (_dir, path) = temp_config(&config(&missing));
    let out = run(newswatch().arg("check").arg("--config").arg(&path));
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains(&missing) && out.stderr.contains("does not exist"),
        "{}",
        out.stderr
    );
}

/// `check` on a config of `text` exits 2 naming `key` and saying `why`.
fn refused(text: &str, key: &str, why: &str) -> crate::util::Run {
    let (_dir, path) = temp_config(text);
    let out = run(newswatch().arg("check").arg("--config").arg(&path));
    assert_eq!(out.code, 2, "{text}: {}", out.stderr);
    assert!(
        out.stderr.contains(key) && out.stderr.contains(why),
        "{text}: wanted {key} and {why:?} in {}",
        out.stderr
    );
    out
}

/// `check --online` reads every feed once: a good feed gives its items, a site's page
/// given as the feed's url names the feed it advertises (resolved against the page),
/// a missing one fails; exit 1 since one failed.
#[test]
fn check_online_reads_each_feed_and_names_the_feed_a_page_advertises() {
    use crate::util::server::{FeedServer, Reply};
    let server = FeedServer::start(|request| {
        match request.path.as_str() {
        "/feed.xml" => Reply::feed(
            "<rss version=\"2.0\"><channel><title>t</title><item><guid>1</guid>\
             <title>One</title></item><item><guid>2</guid><title>Two</title></item></channel></rss>",
        ),
        "/" => Reply::status(
            200,
            "<!DOCTYPE html><html><head><title>Example News</title>\
             <link rel=\"alternate\" type=\"application/atom+xml\" href=\"/news/atom.xml\">\
             </head><body>Home</body></html>",
        )
        .header("content-type", "text/html"),
        _ => Reply::not_found(),
    }
    });
    let (_dir, config) = temp_config(&format!(
        "[[feeds]]\nname = \"good\"\nurl = {:?}\n[[feeds]]\nname = \"home page\"\nurl = {:?}\n\
         [[feeds]]\nname = \"gone\"\nurl = {:?}\n",
        server.url("/feed.xml"),
        server.url("/"),
        server.url("/missing.xml"),
    ));
    let out = run(newswatch()
        .args(["check", "--online", "--config"])
        .arg(&config));
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].contains(": ok: 3 feeds"), "{}", out.stdout);
    assert_eq!(
        lines[1],
        format!(
            "feed \"good\" ({}): ok: 2 items, UTF-8",
            server.url("/feed.xml")
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "feed \"home page\" ({}): failed: an HTML page (\"Example News\") was served instead \
             of a feed; the page advertises the feed {}: use it as the feed's url",
            server.url("/"),
            server.url("/news/atom.xml")
        )
    );
    assert!(
        lines[3].starts_with(&format!(
            "feed \"gone\" ({}): failed: ",
            server.url("/missing.xml")
        )),
        "{}",
        out.stdout
    );
    assert!(lines[3].contains("404"), "{}", out.stdout);
}
