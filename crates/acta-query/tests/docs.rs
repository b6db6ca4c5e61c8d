//! `docs/query.md` shows real behaviour: its example queries parse, and its error examples are
//! exactly what `QueryError::render` prints.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use acta_query::parse;

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/query.md");
    std::fs::read_to_string(path).unwrap()
}

/// The fenced code blocks of the section whose heading is `heading`.
fn blocks(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let title = format!("# {heading}");
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with(heading) || s.starts_with(&title))
        .unwrap();
    section
        .split("```")
        .skip(1)
        .step_by(2)
        .map(|b| {
            b.lines()
                .skip(1)
                .map(str::to_owned)
                .collect::<Vec<String>>()
        })
        .collect()
}

/// A line of an example block without its trailing `# comment`.
fn query_of(line: &str) -> &str {
    line.split("  #").next().unwrap().trim_end()
}

#[test]
fn example_queries_parse() {
    let doc = doc();
    let mut lines = blocks(&doc, "Examples").concat();
    lines.extend(blocks(&doc, "The query language").concat());
    assert!(lines.len() > 10);
    for line in &lines {
        let q = query_of(line);
        let parsed = parse(q).unwrap_or_else(|e| panic!("{}", e.render(q)));
        assert!(parsed.expr.is_some(), "{q}");
    }
}

#[test]
fn error_examples_are_rendered_exactly() {
    let doc = doc();
    let block = blocks(&doc, "Errors").concat();
    let examples: Vec<&[String]> = block
        .split(|l| l.is_empty())
        .filter(|e| !e.is_empty())
        .collect();
    assert!(examples.len() >= 6);
    for example in examples {
        assert_eq!(example.len(), 3, "{example:?}");
        let q = &example[1];
        let e = parse(q).unwrap_err();
        assert_eq!(e.render(q), example.join("\n"));
    }
}
