//! `newswatch scan` end to end: the real binary on fixtures of every kind, with the
//! shipped config, checking articles, entities and topics as a user reads them.

use serde_json::Value;

use crate::util::{
    default_config, entity, entity_ids, fixture, newswatch, run_with_stdin, scan, topic_ids,
};

const TOPIC: &str = "ceasefire-talks";

fn on_topic(item: &Value) -> bool {
    topic_ids(item).iter().any(|t| t == TOPIC)
}

fn scan_stdin(text: &str, extra: &[&str]) -> crate::util::Run {
    let mut cmd = newswatch();
    cmd.arg("scan")
        .arg("--config")
        .arg(default_config())
        .args(extra)
        .arg("-");
    run_with_stdin(&mut cmd, text.as_bytes())
}

#[test]
fn multi_article_text_is_split_and_cleaned() {
    let out = scan(&[&fixture("multi-article.txt")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let titles: Vec<&str> = out
        .items
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "Second round in Istanbul ends without a ceasefire, Kyiv says",
            "Local favourite wins first title after five-set final",
            "Witkoff flies to Moscow as White House presses for truce",
        ],
        "the trailing menu must not become an article"
    );
    let on: Vec<bool> = out.items.iter().map(on_topic).collect();
    assert_eq!(on, [true, false, true]);
    for item in &out.items {
        let text = item["text"].as_str().unwrap();
        for junk in [
            "- Home",
            "Головна",
            "Newsletters",
            "Advertisement",
            "Read more",
            "Share this",
            "via AP on Tuesday",
        ] {
            assert!(!text.contains(junk), "{junk:?} kept in {:?}", item["title"]);
        }
    }
    assert!(entity_ids(&out.items[0]).contains(&"zelensky".to_string()));
    assert!(
        entity_ids(&out.items[1]).is_empty(),
        "tennis names no war entity: {}",
        out.items[1]
    );
}

#[test]
fn what_must_not_match_does_not() {
    for name in ["sport.txt", "markets.txt", "other-war-ceasefire.txt"] {
        let out = scan(&[&fixture(name)]);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        assert!(!out.items.is_empty(), "{name} yields its article");
        for item in &out.items {
            assert!(!on_topic(item), "{name} matched {TOPIC}: {item}");
        }
    }
}

#[test]
fn a_menu_page_is_not_news() {
    let out = scan(&[&fixture("menu-page.html")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.items.iter().all(|i| !on_topic(i)), "{}", out.stdout);
    assert!(
        out.items.is_empty(),
        "a page of menus holds no article: {}",
        out.stdout
    );
}

#[test]
fn html_article_is_cleaned_to_text() {
    let out = scan(&[&fixture("article.html")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.items.len(), 1, "{}", out.stdout);
    let item = &out.items[0];
    assert_eq!(item["kind"], "html");
    assert!(on_topic(item), "{item}");
    let text = item["text"].as_str().unwrap();
    assert!(
        !text.contains('<') && !text.contains("&nbsp;") && !text.contains("&#"),
        "{text}"
    );
    assert!(
        !text.contains("function") && !text.contains("var "),
        "script kept: {text}"
    );
    assert!(
        !text.contains('\u{2019}') && !text.contains('\u{2014}'),
        "quotes and dashes normalised: {text}"
    );
}

#[test]
fn feeds_of_every_format_give_their_items() {
    for (name, total, matching) in [
        ("feed-rss.xml", 3, 1),
        ("feed-atom.xml", 2, 1),
        ("feed.json", 2, 1),
    ] {
        let out = scan(&[&fixture(name)]);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        assert_eq!(out.items.len(), total, "{name}: {}", out.stdout);
        assert_eq!(
            out.items.iter().filter(|i| on_topic(i)).count(),
            matching,
            "{name}: {}",
            out.stdout
        );
        for item in &out.items {
            assert_eq!(item["kind"], "feed");
            assert!(
                item["url"].as_str().is_some_and(|u| u.starts_with("http")),
                "{name}: {item}"
            );
            assert!(
                !item["title"].as_str().unwrap().is_empty(),
                "{name}: {item}"
            );
        }
    }
}

#[test]
fn russian_and_ukrainian_articles_match() {
    let out = scan(&[&fixture("cyrillic.txt")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.items.len(), 2, "{}", out.stdout);
    for item in &out.items {
        assert!(on_topic(item), "{item}");
    }
    let ru = entity_ids(&out.items[0]);
    assert!(
        ru.contains(&"putin".to_string()) && ru.contains(&"kremlin".to_string()),
        "{ru:?}"
    );
    let uk = entity_ids(&out.items[1]);
    assert!(
        uk.contains(&"zelensky".to_string()) && uk.contains(&"ukraine".to_string()),
        "{uk:?}"
    );
}

#[test]
fn spellings_of_one_name_are_one_entity() {
    let out = scan_stdin(
        "Talks\nZelensky met envoys. Later Zelenskyy said more. President Zelenskiy's office agreed.\n",
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let item = &out.items[0];
    let z = entity(item, "zelensky").expect("zelensky found");
    assert_eq!(z["mentions"], 3, "{z}");
    assert_eq!(z["kind"], "person");
    assert_eq!(
        entity_ids(item)
            .iter()
            .filter(|id| id.starts_with("zelensk"))
            .count(),
        1
    );
}

#[test]
fn words_match_on_unicode_boundaries_and_folded_forms() {
    let out = scan_stdin(
        "Envoys meet\nA cease-fire between the Russia-Ukraine sides was discussed. PUTIN'S aide spoke.\n",
        &[],
    );
    let item = &out.items[0];
    assert!(
        on_topic(item),
        "cease-fire is ceasefire, Russia-Ukraine names Russia: {item}"
    );
    let putin = entity(item, "putin").expect("PUTIN'S is Putin");
    // The first mention is at this character offset of the body.
    let body = "A cease-fire between the Russia-Ukraine sides was discussed. PUTIN'S aide spoke.";
    assert_eq!(putin["first"]["char"], body.find("PUTIN").unwrap());
    assert_eq!(putin["first"]["field"], "body");

    // Part of a word is not the word.
    let out = scan_stdin(
        "Essay\nPutinism and the ceasefirewatch blog discussed Russianness.\n",
        &[],
    );
    let item = &out.items[0];
    assert!(entity(item, "putin").is_none(), "{item}");
    assert!(!on_topic(item), "{item}");
}

#[test]
fn explain_says_why() {
    let out = scan_stdin(
        "Football\nThe match ended in a draw after a late goal.\n",
        &["--explain"],
    );
    let why = out.items[0]["explain"][TOPIC]
        .as_str()
        .expect("explain for the topic");
    assert!(why.ends_with("=> no match"), "{why}");
    assert!(why.contains("ceasefire[0]"), "{why}");

    let out = scan_stdin(
        "Talks\nPutin and Zelensky discussed a ceasefire.\n",
        &["--explain"],
    );
    let why = out.items[0]["explain"][TOPIC].as_str().unwrap();
    assert!(
        why.contains("ceasefire[1]") && why.contains("@putin[1]"),
        "{why}"
    );
    assert!(why.contains("=> match, score"), "{why}");
    let topic = &out.items[0]["topics"][0];
    let matched: Vec<&str> = topic["matched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        matched.contains(&"ceasefire") && matched.contains(&"@putin"),
        "{matched:?}"
    );
    assert!(topic["score"].as_f64().unwrap() >= 1.0);
}

/// Feeds in Chinese, Japanese, Korean, Cyrillic and Arabic, with such text right after
/// a `<`, in processing instructions, a doctype, authors and attribute values: every
/// item is read, and a good file after them is still scanned.
#[test]
fn feeds_in_cjk_cyrillic_and_arabic_scripts_are_read_whole() {
    let out = crate::util::scan(&[
        &fixture("feed-cjk-rss.xml"),
        &fixture("feed-cyrillic-arabic-atom.xml"),
        &fixture("sport.txt"),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let titles: Vec<&str> = out
        .items
        .iter()
        .map(|i| i["title"].as_str().unwrap_or(""))
        .collect();
    for title in [
        "東京で停戦交渉",
        "北京举行停火谈判",
        "서울에서 휴전 회담",
        "Переговоры о перемирии",
        "محادثات وقف إطلاق النار",
    ] {
        assert!(
            titles.contains(&title),
            "{title} is missing from {titles:?}"
        );
    }
    assert_eq!(out.items.len(), 6, "{titles:?}");
    let text_of = |title: &str| {
        out.items
            .iter()
            .find(|i| i["title"] == title)
            .and_then(|i| i["text"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert!(text_of("東京で停戦交渉").contains("停戦交渉が東京で始まった"));
    assert!(text_of("北京举行停火谈判").contains("俄罗斯和乌克兰"));
    assert!(text_of("محادثات وقف إطلاق النار").contains("جدة"));
    let russian = out
        .items
        .iter()
        .find(|i| i["title"] == "Переговоры о перемирии")
        .expect("the Russian entry");
    let entities = crate::util::entity_ids(russian);
    assert!(
        entities.contains(&"putin".to_string()) && entities.contains(&"zelensky".to_string()),
        "{entities:?}"
    );
    assert!(titles.iter().any(|t| t.contains("Rovers climb")));
}

/// Korean and Arabic feeds whose processing instructions, doctypes (one with an
/// internal subset) and attribute values hold such text right after a `<`, and a feed
/// opening with `<?xml ééé?>` with a raw `<` before Japanese inside an attribute value:
/// each item comes out under its own file, and the files after them are scanned.
#[test]
fn feeds_with_non_ascii_after_markup_are_read_and_later_files_scanned() {
    let files = [
        fixture("feed-pi-and-attributes.xml"),
        fixture("feed-korean-atom.xml"),
        fixture("feed-arabic-rss.xml"),
        fixture("sport.txt"),
    ];
    let out = scan(&files.iter().map(|p| p.as_path()).collect::<Vec<_>>());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let of = |path: &std::path::Path| -> Vec<(String, String)> {
        let source = path.display().to_string();
        out.items
            .iter()
            .filter(|i| i["source"] == source.as_str())
            .map(|i| {
                let field = |k: &str| i[k].as_str().unwrap_or_default().to_string();
                (field("title"), field("text"))
            })
            .collect()
    };
    let pi = of(&files[0]);
    assert_eq!(pi.len(), 1, "{pi:?}\n{}", out.stderr);
    assert_eq!(pi[0].0, "東京で停戦交渉");
    assert!(pi[0].1.contains("opened in Tokyo"), "{pi:?}");
    let tokyo = out
        .items
        .iter()
        .find(|i| i["title"] == "東京で停戦交渉")
        .expect("the Tokyo item");
    assert!(on_topic(tokyo), "{tokyo}");
    assert!(entity(tokyo, "russia").is_some() && entity(tokyo, "ukraine").is_some());

    let korean = of(&files[1]);
    let titles: Vec<&str> = korean.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(titles, ["휴전 협상 재개", "봄 축제 개막"], "{}", out.stderr);
    assert!(
        korean[0].1.contains("휴전 협상을 다시 시작했다"),
        "{korean:?}"
    );

    let arabic = of(&files[2]);
    let titles: Vec<&str> = arabic.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        titles,
        ["مفاوضات وقف إطلاق النار في جدة", "عودة الطلاب إلى المدارس"],
        "{}",
        out.stderr
    );
    assert!(arabic[0].1.contains("لبحث هدنة"), "{arabic:?}");

    let sport = of(&files[3]);
    assert!(
        sport.iter().any(|(t, _)| t.contains("Rovers climb")),
        "{sport:?}"
    );
}

/// `scan` over many files reads several at once (`--jobs`, by default one per core)
/// yet prints exactly what one file at a time prints, in the order of the files on
/// the command line: items, notes on decoding, and the errors of files that cannot
/// be read (missing, a directory, binary), with the files after those still scanned.
#[test]
fn many_files_at_once_print_what_one_at_a_time_prints() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.xml");
    let binary = dir.path().join("image.bin");
    std::fs::write(
        &binary,
        [0x89, b'P', b'N', b'G', 0, 0, 0, 13, 0, 0, 1, 0, 0xff],
    )
    .unwrap();
    let latin1 = dir.path().join("latin1.txt");
    std::fs::write(
        &latin1,
        b"Caf\xe9 talks\n\nPutin and Zelensky discuss a ceasefire in Istanbul, the caf\xe9 owner said.\n",
    )
    .unwrap();
    let subdir = dir.path().join("a-directory");
    std::fs::create_dir(&subdir).unwrap();
    let files = [
        fixture("feed-rss.xml"),
        missing.clone(),
        fixture("multi-article.txt"),
        subdir.clone(),
        latin1.clone(),
        fixture("feed-atom.xml"),
        binary.clone(),
        fixture("cyrillic.txt"),
        fixture("feed.json"),
        fixture("article.html"),
        fixture("feed-cjk-rss.xml"),
        fixture("sport.txt"),
    ];
    let run = |jobs: Option<&str>| {
        let mut cmd =
            crate::util::scan_command(&files.iter().map(|p| p.as_path()).collect::<Vec<_>>());
        if let Some(jobs) = jobs {
            cmd.arg("--jobs").arg(jobs);
        }
        crate::util::run(&mut cmd)
    };
    let one = run(Some("1"));
    assert_eq!(one.code, 1, "{}", one.err());
    for (file, says) in [
        (&missing, "cannot open"),
        (&subdir, "is a directory"),
        (&binary, "skipped:"),
    ] {
        let messages = one.messages_about(file);
        assert!(
            messages.iter().any(|m| m.contains(says)),
            "{}: {messages:?}",
            file.display()
        );
    }
    assert!(!one.messages_about(&latin1).is_empty(), "{}", one.err());
    // Every readable file gave items, in the order of the command line.
    let readable: Vec<&std::path::PathBuf> = files
        .iter()
        .filter(|f| ![&missing, &subdir, &binary].contains(f))
        .collect();
    let sources: Vec<String> = one
        .items
        .iter()
        .map(|i| i["source"].as_str().unwrap_or_default().to_string())
        .collect();
    let mut order: Vec<String> = sources.clone();
    order.dedup();
    let want: Vec<String> = readable.iter().map(|f| f.display().to_string()).collect();
    assert_eq!(order, want, "{}", one.err());
    assert!(one.items.len() > readable.len());

    for jobs in [None, Some("2"), Some("5")] {
        let many = run(jobs);
        assert_eq!(many.code, one.code, "--jobs {jobs:?}: {}", many.err());
        assert_eq!(many.stdout, one.stdout, "--jobs {jobs:?}");
        assert_eq!(many.stderr, one.stderr, "--jobs {jobs:?}");
    }

    let zero = run(Some("0"));
    assert_eq!(zero.code, 2, "{}", zero.err());
    assert!(zero.stderr.contains("--jobs"), "{}", zero.err());
}

/// One plain-text file of over a megabyte is cleaned in pieces and its articles
/// analysed on several threads: the output must be what one thread prints, article
/// for article, with entities, topics and text.
#[test]
fn one_large_text_file_prints_the_same_on_one_thread_and_many() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wire.txt");
    let mut text = String::new();
    let mut n = 0;
    while text.len() < 1_300_000 {
        n += 1;
        text.push_str(&format!("Ceasefire talks, day {n}\r\n"));
        for p in 0..(n % 5 + 1) {
            text.push_str(&format!(
                "Zelensky and Putin\u{2019}s envoys met in Istanbul on round {n}, \u{201C}part {p}\u{201D} \u{2014} \
                 переговоры о перемирии в Стамбуле продолжатся.\u{00A0}Officials said the ceasefire \
                 would hold.\r\n"
            ));
        }
        text.push_str(if n % 9 == 0 {
            "=====\n=====\n"
        } else {
            "=====\n"
        });
        if n % 4 == 0 {
            text.push_str("- Home\n- News\n- Sport\n");
        }
    }
    std::fs::write(&path, &text).unwrap();
    let run = |jobs: &str| {
        let mut cmd = crate::util::scan_command(&[path.as_path()]);
        cmd.arg("--jobs").arg(jobs);
        crate::util::run(&mut cmd)
    };
    let one = run("1");
    assert_eq!(one.code, 0, "{}", one.err());
    assert_eq!(one.items.len(), n, "one article per segment");
    assert_eq!(one.items[0]["title"], "Ceasefire talks, day 1");
    assert!(
        one.items
            .iter()
            .all(|i| i["topics"].as_array().is_some_and(|t| !t.is_empty())),
        "every article is on the ceasefire topic"
    );
    for jobs in ["2", "3"] {
        let many = run(jobs);
        assert_eq!(many.code, 0, "--jobs {jobs}: {}", many.err());
        assert_eq!(many.stdout, one.stdout, "--jobs {jobs}");
    }
}
