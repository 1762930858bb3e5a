//! keepalived.conf syntax: lines of `keyword args...`, `{ ... }` blocks, `#` and `!` comments,
//! quoted strings, and `include` of other files (glob patterns, relative to the including file).
//! Every node remembers its file and line, so every later message can point at it.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct SyntaxError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// One statement: `key args...`, with a block if it opened one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub key: String,
    pub args: Vec<String>,
    pub block: Option<Vec<Node>>,
    pub file: String,
    pub line: usize,
}

impl Node {
    pub fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    pub fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or(&[])
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Open,
    Close,
}

/// Splits one line into tokens; a comment runs from `#` or `!` (at a token start) to the end.
fn tokens(line: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '#' || c == '!' {
            break;
        } else if c == '{' {
            chars.next();
            out.push(Tok::Open);
        } else if c == '}' {
            chars.next();
            out.push(Tok::Close);
        } else if c == '"' {
            chars.next();
            let mut w = String::new();
            for d in chars.by_ref() {
                if d == '"' {
                    break;
                }
                w.push(d);
            }
            out.push(Tok::Word(w));
        } else {
            let mut w = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_whitespace() || d == '{' || d == '}' {
                    break;
                }
                w.push(d);
                chars.next();
            }
            out.push(Tok::Word(w));
        }
    }
    out
}

/// Source of included files; the API refuses includes (a request must not read the server's
/// files), the command line reads them from disk.
pub trait Includes {
    fn read(&self, pattern: &str, from: &Path) -> Result<Vec<(PathBuf, String)>, String>;
}

/// Reads includes from the filesystem; `*` and `?` match within the last path component.
pub struct FsIncludes;

/// `*` and `?` matching, iterative with one backtrack point (the last `*`), so a pattern full of
/// stars costs O(len(p) * len(s)) and never recurses.
fn glob_match(p: &[char], s: &[char]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == '?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl Includes for FsIncludes {
    fn read(&self, pattern: &str, from: &Path) -> Result<Vec<(PathBuf, String)>, String> {
        let base = from.parent().unwrap_or(Path::new("."));
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            base.join(pattern)
        };
        let name = full
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let mut files = Vec::new();
        if name.contains('*') || name.contains('?') {
            let dir = full.parent().unwrap_or(Path::new("."));
            let pat: Vec<char> = name.chars().collect();
            let entries = std::fs::read_dir(dir).map_err(|e| format!("include {pattern}: {e}"))?;
            for e in entries.flatten() {
                let n: Vec<char> = e.file_name().to_string_lossy().chars().collect();
                if glob_match(&pat, &n) {
                    files.push(e.path());
                }
            }
            files.sort();
        } else {
            files.push(full);
        }
        files
            .into_iter()
            .map(|f| {
                std::fs::read_to_string(&f)
                    .map(|t| (f.clone(), t))
                    .map_err(|e| format!("include {}: {e}", f.display()))
            })
            .collect()
    }
}

/// No includes: every `include` is an error.
pub struct NoIncludes;

impl Includes for NoIncludes {
    fn read(&self, pattern: &str, _: &Path) -> Result<Vec<(PathBuf, String)>, String> {
        Err(format!(
            "include {pattern}: includes are not read here (import the file with `lbd import-keepalived`)"
        ))
    }
}

/// Bounds on what one parse may build, so that no file (or request body) can exhaust the stack or
/// memory. keepalived's own grammar nests fewer than 10 blocks deep (`virtual_server` >
/// `real_server` > `HTTP_GET` > `url` is the deepest), and a config of 2,277 virtual servers with
/// 37,205 real servers is about 7 MiB and 1.5 million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open blocks at once, across includes.
    pub max_depth: usize,
    /// Bytes of text, the including file and every included one together.
    pub max_bytes: usize,
    /// Words and braces, across includes.
    pub max_tokens: usize,
    /// Files open at once through nested `include`s.
    pub max_include_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 16,
            max_bytes: 32 * 1024 * 1024,
            max_tokens: 4_000_000,
            max_include_depth: 8,
        }
    }
}

/// What a parse has used so far, across includes.
struct Budget {
    limits: Limits,
    stack: Vec<PathBuf>,
    bytes: usize,
    tokens: usize,
}

/// Parses `text` (from `file`) into nodes, expanding includes, within the default [`Limits`].
pub fn parse(text: &str, file: &Path, inc: &dyn Includes) -> Result<Vec<Node>, SyntaxError> {
    parse_with(text, file, inc, Limits::default())
}

/// [`parse`] within `limits`.
pub fn parse_with(
    text: &str,
    file: &Path,
    inc: &dyn Includes,
    limits: Limits,
) -> Result<Vec<Node>, SyntaxError> {
    let mut budget = Budget {
        limits,
        stack: vec![file.to_path_buf()],
        bytes: 0,
        tokens: 0,
    };
    parse_file(text, file, inc, &mut budget, 0)
}

fn parse_file(
    text: &str,
    file: &Path,
    inc: &dyn Includes,
    budget: &mut Budget,
    depth: usize,
) -> Result<Vec<Node>, SyntaxError> {
    let name = file.display().to_string();
    let err = |line: usize, message: String| SyntaxError {
        file: name.clone(),
        line,
        message,
    };
    budget.bytes = budget.bytes.saturating_add(text.len());
    if budget.bytes > budget.limits.max_bytes {
        return Err(err(
            1,
            format!(
                "the configuration is larger than {} bytes (with its includes)",
                budget.limits.max_bytes
            ),
        ));
    }
    // Levels of open blocks: (nodes so far, the node that opened the level).
    let mut levels: Vec<(Vec<Node>, Option<Node>)> = vec![(Vec::new(), None)];
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let toks = tokens(raw);
        budget.tokens = budget.tokens.saturating_add(toks.len());
        if budget.tokens > budget.limits.max_tokens {
            return Err(err(
                line,
                format!(
                    "more than {} words and braces (with includes)",
                    budget.limits.max_tokens
                ),
            ));
        }
        let max_depth = budget.limits.max_depth;
        let too_deep = |line: usize| {
            err(
                line,
                format!(
                    "blocks nested deeper than {max_depth} levels (keepalived's grammar needs fewer than 10)"
                ),
            )
        };
        let mut toks = toks.into_iter().peekable();
        while toks.peek().is_some() {
            match toks.next() {
                Some(Tok::Close) => {
                    let (nodes, opener) = levels
                        .pop()
                        .ok_or_else(|| err(line, "unbalanced '}'".into()))?;
                    let Some(mut node) = opener else {
                        return Err(err(line, "'}' without a block to close".into()));
                    };
                    node.block = Some(nodes);
                    match levels.last_mut() {
                        Some(l) => l.0.push(node),
                        None => return Err(err(line, "'}' without a block to close".into())),
                    }
                }
                Some(Tok::Open) => {
                    // A block opened on a line of its own belongs to the statement before it.
                    let top = levels
                        .last_mut()
                        .ok_or_else(|| err(line, "internal".into()))?;
                    let node = top
                        .0
                        .pop()
                        .ok_or_else(|| err(line, "'{' without a keyword".into()))?;
                    if depth + levels.len() > max_depth {
                        return Err(too_deep(line));
                    }
                    levels.push((Vec::new(), Some(node)));
                }
                Some(Tok::Word(key)) => {
                    let mut args = Vec::new();
                    let mut opens = false;
                    while let Some(t) = toks.peek() {
                        match t {
                            Tok::Word(w) => {
                                args.push(w.clone());
                                toks.next();
                            }
                            Tok::Open => {
                                toks.next();
                                opens = true;
                                break;
                            }
                            Tok::Close => break,
                        }
                    }
                    let node = Node {
                        key: key.clone(),
                        args,
                        block: None,
                        file: name.clone(),
                        line,
                    };
                    if key == "include" && !opens {
                        let pattern = node
                            .args
                            .first()
                            .ok_or_else(|| err(line, "include needs a file".into()))?;
                        let files = inc.read(pattern, file).map_err(|m| err(line, m))?;
                        if files.is_empty() {
                            return Err(err(line, format!("include {pattern}: no file matches")));
                        }
                        if budget.stack.len() >= budget.limits.max_include_depth {
                            return Err(err(
                                line,
                                format!(
                                    "include {pattern}: includes nested deeper than {} files",
                                    budget.limits.max_include_depth
                                ),
                            ));
                        }
                        for (path, text) in files {
                            let canon = path.canonicalize().unwrap_or(path.clone());
                            if budget
                                .stack
                                .iter()
                                .any(|p| p.canonicalize().unwrap_or(p.clone()) == canon)
                            {
                                return Err(err(
                                    line,
                                    format!("include {}: includes itself", path.display()),
                                ));
                            }
                            budget.stack.push(path.clone());
                            let inner_depth = depth + levels.len() - 1;
                            let nodes = parse_file(&text, &path, inc, budget, inner_depth)?;
                            budget.stack.pop();
                            if let Some(top) = levels.last_mut() {
                                top.0.extend(nodes);
                            }
                        }
                    } else if opens {
                        if depth + levels.len() > max_depth {
                            return Err(too_deep(line));
                        }
                        levels.push((Vec::new(), Some(node)));
                    } else if let Some(top) = levels.last_mut() {
                        top.0.push(node);
                    }
                }
                None => break,
            }
        }
    }
    if levels.len() > 1 {
        let opener = levels
            .last()
            .and_then(|l| l.1.as_ref())
            .map(|n| (n.key.clone(), n.line))
            .unwrap_or_default();
        return Err(err(opener.1, format!("block `{}` is not closed", opener.0)));
    }
    Ok(levels.pop().map(|l| l.0).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_comments_quotes_and_one_line_blocks() {
        let text = "! comment\nglobal_defs {\n  router_id lk01  # trailing\n}\nvrrp_instance VI_1 {\n  virtual_ipaddress { 192.168.10.100 }\n  notify \"/bin/x y\"\n}\n";
        let n = parse(text, Path::new("t.conf"), &NoIncludes).unwrap();
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].children()[0].args, vec!["lk01"]);
        assert_eq!(n[1].args, vec!["VI_1"]);
        assert_eq!(n[1].children()[0].children()[0].key, "192.168.10.100");
        assert_eq!(n[1].children()[1].args, vec!["/bin/x y"]);
        assert_eq!(n[1].children()[1].line, 7);
    }

    #[test]
    fn errors_carry_file_and_line() {
        let e = parse("a {\n b 1\n", Path::new("x.conf"), &NoIncludes).unwrap_err();
        assert_eq!(e.to_string(), "x.conf:1: block `a` is not closed");
        let e = parse("a 1\n}\n", Path::new("x.conf"), &NoIncludes).unwrap_err();
        assert_eq!(e.to_string(), "x.conf:2: '}' without a block to close");
        let e = parse("include other.conf\n", Path::new("x.conf"), &NoIncludes).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("x.conf:1: include other.conf: includes are not read here"));
    }

    #[test]
    fn nesting_beyond_the_limit_is_an_error_on_its_line_not_a_crash() {
        // The remote crash of issue #22: 50,000 nested blocks overflowed the stack in the
        // recursive drop of the tree. Now the parse stops at the limit.
        let deep = "a {\n".repeat(50_000);
        let e = parse(&deep, Path::new("deep.conf"), &NoIncludes).unwrap_err();
        assert_eq!(e.line, 17);
        assert!(e.message.contains("nested deeper than 16"), "{e}");
        // On one line too (braces without newlines).
        let e = parse(&"a { ".repeat(50_000), Path::new("x"), &NoIncludes).unwrap_err();
        assert_eq!(e.line, 1);
        // 16 levels are fine, and come back as a tree that deep.
        let ok = format!("{}{}", "a {\n".repeat(16), "}\n".repeat(16));
        let mut n = parse(&ok, Path::new("x"), &NoIncludes).unwrap();
        let mut depth = 0;
        while let Some(first) = n.pop() {
            depth += 1;
            n = first.block.unwrap_or_default();
        }
        assert_eq!(depth, 16);
    }

    #[test]
    fn size_and_token_limits_name_the_line() {
        let limits = Limits {
            max_tokens: 10,
            ..Limits::default()
        };
        let e = parse_with(
            "a 1 2\nb 3 4\nc 5 6 7 8\n",
            Path::new("t"),
            &NoIncludes,
            limits,
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("more than 10 words"), "{e}");
        let limits = Limits {
            max_bytes: 8,
            ..Limits::default()
        };
        let e = parse_with("a 1 2 3 4 5\n", Path::new("t"), &NoIncludes, limits).unwrap_err();
        assert!(e.message.contains("larger than 8 bytes"), "{e}");
    }

    #[test]
    fn includes_nest_only_so_deep() {
        let dir = tempfile::tempdir().unwrap();
        // f0 includes f1 includes ... f19: deeper than the include limit.
        for i in 0..20 {
            std::fs::write(
                dir.path().join(format!("f{i}.conf")),
                format!("include f{}.conf\n", i + 1),
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("f20.conf"), "x 1\n").unwrap();
        let top = dir.path().join("f0.conf");
        let text = std::fs::read_to_string(&top).unwrap();
        let e = parse(&text, &top, &FsIncludes).unwrap_err();
        assert!(e.message.contains("includes nested deeper than 8"), "{e}");
        // Nesting counts across files: a block open in the includer counts in the included.
        std::fs::write(dir.path().join("inner.conf"), "b {\n c {\n }\n}\n").unwrap();
        let outer = dir.path().join("outer.conf");
        let text = format!(
            "{}include inner.conf\n{}",
            "a {\n".repeat(15),
            "}\n".repeat(15)
        );
        let e = parse_with(&text, &outer, &FsIncludes, Limits::default()).unwrap_err();
        assert!(e.file.ends_with("inner.conf"), "{e}");
        assert_eq!(e.line, 2);
    }

    #[test]
    fn glob_matches_without_backtracking_blowup() {
        let m = |p: &str, s: &str| {
            glob_match(
                &p.chars().collect::<Vec<_>>(),
                &s.chars().collect::<Vec<_>>(),
            )
        };
        assert!(m("*.conf", "a.conf"));
        assert!(m("a?c*", "abcdef"));
        assert!(m("*", ""));
        assert!(!m("*.conf", "a.con"));
        assert!(!m("a?c", "ac"));
        assert!(m("*a*b*c", "xxaxxbxxc"));
        // Exponential for a naive recursive matcher; linear-ish here.
        let p = "*a".repeat(30) + "b";
        assert!(!m(&p, &"a".repeat(5_000)));
    }
}
