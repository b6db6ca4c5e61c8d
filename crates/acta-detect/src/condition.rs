//! Sigma conditions: `and`, `or`, `not`, parentheses, and `1 of`/`all of`
//! over selection names (with `*` wildcards) or `them`.

/// A parsed condition, over selections numbered by their position in the
/// rule's detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// One selection.
    Selection(usize),
    /// All of the conditions (`and`, `all of`).
    All(Vec<Condition>),
    /// Any of the conditions (`or`, `1 of`).
    Any(Vec<Condition>),
    /// `not`
    Not(Box<Condition>),
}

impl Condition {
    /// Evaluates the condition given each selection's verdict.
    pub fn eval(&self, selection: &mut impl FnMut(usize) -> bool) -> bool {
        match self {
            Condition::Selection(i) => selection(*i),
            Condition::All(items) => items.iter().all(|c| c.eval(selection)),
            Condition::Any(items) => items.iter().any(|c| c.eval(selection)),
            Condition::Not(inner) => !inner.eval(selection),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Word(String),
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c == '(' || c == ')' || c.is_whitespace() {
            if !word.is_empty() {
                tokens.push(Token::Word(std::mem::take(&mut word)));
            }
            match c {
                '(' => tokens.push(Token::Open),
                ')' => tokens.push(Token::Close),
                _ => {}
            }
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        tokens.push(Token::Word(word));
    }
    tokens
}

/// Parses a condition against the rule's selection names.
pub fn parse(text: &str, names: &[String]) -> Result<Condition, String> {
    let mut parser = Parser {
        tokens: tokenize(text),
        pos: 0,
        names,
    };
    let condition = parser.or()?;
    match parser.peek() {
        None => Ok(condition),
        Some(token) => Err(format!(
            "condition `{text}`: unexpected {}",
            describe(Some(token))
        )),
    }
}

fn describe(token: Option<&Token>) -> String {
    match token {
        None => "end".to_owned(),
        Some(Token::Open) => "`(`".to_owned(),
        Some(Token::Close) => "`)`".to_owned(),
        Some(Token::Word(word)) => format!("`{word}`"),
    }
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    names: &'a [String],
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn or(&mut self) -> Result<Condition, String> {
        let mut items = vec![self.and()?];
        while self.keyword("or") {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(single_or(items, Condition::Any))
    }

    fn and(&mut self) -> Result<Condition, String> {
        let mut items = vec![self.not()?];
        while self.keyword("and") {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(single_or(items, Condition::All))
    }

    fn not(&mut self) -> Result<Condition, String> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Condition::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Condition, String> {
        let token = self.peek().cloned();
        self.pos += 1;
        match token {
            Some(Token::Open) => {
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err(format!("expected `)`, found {}", describe(self.peek())));
                }
                self.pos += 1;
                Ok(inner)
            }
            Some(Token::Word(word)) => {
                let quantifier = match word.to_ascii_lowercase().as_str() {
                    "1" | "any" => Some(false),
                    "all" => Some(true),
                    _ => None,
                };
                if let Some(all) = quantifier.filter(|_| self.keyword("of")) {
                    self.pos += 1;
                    let Some(Token::Word(target)) = self.peek().cloned() else {
                        return Err(format!(
                            "`{word} of` needs a selection name or `them`, found {}",
                            describe(self.peek())
                        ));
                    };
                    self.pos += 1;
                    return self.quantified(all, &target);
                }
                if ["and", "or", "of", "|"].contains(&word.to_ascii_lowercase().as_str())
                    || word.starts_with('|')
                {
                    return Err(format!("unexpected `{word}` in condition"));
                }
                self.names
                    .iter()
                    .position(|name| *name == word)
                    .map(Condition::Selection)
                    .ok_or_else(|| format!("condition names `{word}`, which is not a selection"))
            }
            other => Err(format!(
                "expected a selection, found {}",
                describe(other.as_ref())
            )),
        }
    }

    fn quantified(&self, all: bool, target: &str) -> Result<Condition, String> {
        let chosen: Vec<Condition> = self
            .names
            .iter()
            .enumerate()
            .filter(|(_, name)| {
                if target.eq_ignore_ascii_case("them") {
                    !name.starts_with('_')
                } else {
                    wildcard_name(target, name)
                }
            })
            .map(|(i, _)| Condition::Selection(i))
            .collect();
        if chosen.is_empty() {
            return Err(format!("`of {target}` matches no selection"));
        }
        Ok(if all {
            Condition::All(chosen)
        } else {
            Condition::Any(chosen)
        })
    }
}

fn single_or(mut items: Vec<Condition>, wrap: fn(Vec<Condition>) -> Condition) -> Condition {
    if items.len() == 1
        && let Some(item) = items.pop()
    {
        return item;
    }
    wrap(items)
}

/// Whether a selection name matches a pattern where `*` is any run.
fn wildcard_name(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = rest.get(at + part.len()..).unwrap_or(""),
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn eval(condition: &str, list: &[&str], truth: &[bool]) -> bool {
        parse(condition, &names(list))
            .unwrap()
            .eval(&mut |i| truth[i])
    }

    #[test]
    fn boolean_operators_and_precedence() {
        let n = ["a", "b", "c"];
        assert!(eval("a and b or c", &n, &[false, false, true]));
        assert!(!eval("a and (b or c)", &n, &[false, true, true]));
        assert!(eval("a and not b", &n, &[true, false, false]));
        assert!(!eval("not a or b", &n, &[true, false, false]));
        assert!(eval("not not a", &n, &[true, false, false]));
        assert!(eval("a AND NOT (b OR c)", &n, &[true, false, false]));
    }

    #[test]
    fn quantifiers() {
        let n = ["selection_a", "selection_b", "filter", "_hidden"];
        assert!(eval("1 of selection_*", &n, &[false, true, false, false]));
        assert!(!eval(
            "all of selection_*",
            &n,
            &[false, true, false, false]
        ));
        assert!(eval(
            "all of selection_* and not filter",
            &n,
            &[true, true, false, false]
        ));
        assert!(eval("1 of them", &n, &[false, false, true, false]));
        assert!(!eval("1 of them", &n, &[false, false, false, true]));
        assert!(eval("all of them", &n, &[true, true, true, false]));
        assert!(eval("any of sel*b", &n, &[false, true, false, false]));
        assert!(eval("not 1 of filter*", &n, &[true, false, false, false]));
    }

    #[test]
    fn errors() {
        let n = names(&["a", "b"]);
        assert!(parse("a and c", &n).unwrap_err().contains("`c`"));
        assert!(parse("(a and b", &n).is_err());
        assert!(parse("a b", &n).is_err());
        assert!(parse("1 of x*", &n).is_err());
        assert!(parse("a | count() > 5", &n).is_err());
        assert!(parse("", &n).is_err());
    }

    #[test]
    fn name_wildcards() {
        assert!(wildcard_name("sel*", "selection"));
        assert!(wildcard_name("*tion", "selection"));
        assert!(wildcard_name("s*c*n", "selection"));
        assert!(!wildcard_name("sel", "selection"));
        assert!(wildcard_name("*", "x"));
    }
}
