//! The two seed documents in ../shared/seeds, when that folder is present.
//!
//! The project stands alone, so this test passes quietly without them; with them, it
//! checks the acceptance: three articles, the trailing menu gone, all three on
//! the ceasefire-talks topic, and the four principals found in each file.

use std::path::PathBuf;

use crate::util::{entity, entity_ids, root, scan, topic_ids};

fn seeds() -> Option<(PathBuf, PathBuf)> {
    let dir = root().join("../shared/seeds");
    let a = dir.join("000_33bb123d1179563f.txt");
    let b = dir.join("004_fa2e2020d2a38a2c.txt");
    (a.is_file() && b.is_file()).then_some((a, b))
}

#[test]
fn seed_documents_give_three_articles_on_topic() {
    let Some((a, b)) = seeds() else {
        eprintln!("../shared/seeds not present; skipped");
        return;
    };
    let run = scan(&[&a, &b]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let from = |p: &PathBuf| {
        run.items
            .iter()
            .filter(|i| i["source"] == p.display().to_string())
            .collect::<Vec<_>>()
    };
    let (items_a, items_b) = (from(&a), from(&b));
    assert_eq!(items_a.len(), 1, "000 holds one article: {:#?}", items_a);
    assert_eq!(items_b.len(), 2, "004 holds two articles: {:#?}", items_b);

    for item in run.items.iter() {
        let text = item["text"].as_str().unwrap();
        for menu_line in [
            "Κεντρική Σελίδα",
            "Motivational and Inspiring Story",
            "Gardening",
            "Military Equipments",
        ] {
            assert!(
                !text.contains(menu_line),
                "menu line {menu_line:?} kept in {}",
                item["title"]
            );
        }
        assert!(
            !text.contains("=========="),
            "separator kept in {}",
            item["title"]
        );
        assert!(
            topic_ids(item).contains(&"ceasefire-talks".to_string()),
            "not on topic: {}",
            item["title"]
        );
    }
    // The photo caption that opens the first article of 004 is not news text.
    let first_b = items_b[0]["text"].as_str().unwrap();
    assert!(
        !first_b.contains("Press Service on Friday"),
        "caption kept: {first_b}"
    );
    assert_eq!(
        items_b[0]["title"],
        "US envoy is taking Putin's comments on Ukraine ceasefire proposal to Trump, Kremlin official says"
    );

    for items in [&items_a, &items_b] {
        let mut ids: Vec<String> = items.iter().flat_map(|i| entity_ids(i)).collect();
        ids.sort();
        ids.dedup();
        for who in ["putin", "trump", "witkoff", "zelensky"] {
            assert!(ids.contains(&who.to_string()), "{who} missing from {ids:?}");
        }
    }
    // "Zelensky" (4 times in 000) is one entity with all its mentions.
    let z = entity(items_a[0], "zelensky").expect("zelensky in 000");
    assert_eq!(z["mentions"], 4, "{z}");
}
