//! Escaping plain text for markup: `&`, `<` and `>` as character references. Plain
//! text handed to the HTML cleaner needs exactly these three to stay text, and Slack's
//! message format asks for exactly these three too; one function below both.

/// `text` with `&`, `<` and `>` as `&amp;`, `&lt;` and `&gt;`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_three_characters_and_nothing_else() {
        assert_eq!(
            super::escape("Putin & Zelensky <agree> \"to\" 'talks' — ок"),
            "Putin &amp; Zelensky &lt;agree&gt; \"to\" 'talks' — ок"
        );
        assert_eq!(super::escape(""), "");
    }
}
