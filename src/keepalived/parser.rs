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

fn glob_match(p: &[char], s: &[char]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some('*'), _) => glob_match(&p[1..], s) || (!s.is_empty() && glob_match(p, &s[1..])),
        (Some('?'), Some(_)) => glob_match(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob_match(&p[1..], &s[1..]),
        _ => false,
    }
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

/// Parses `text` (from `file`) into nodes, expanding includes.
pub fn parse(text: &str, file: &Path, inc: &dyn Includes) -> Result<Vec<Node>, SyntaxError> {
    let mut stack = vec![file.to_path_buf()];
    parse_file(text, file, inc, &mut stack)
}

fn parse_file(
    text: &str,
    file: &Path,
    inc: &dyn Includes,
    stack: &mut Vec<PathBuf>,
) -> Result<Vec<Node>, SyntaxError> {
    let name = file.display().to_string();
    let err = |line: usize, message: String| SyntaxError {
        file: name.clone(),
        line,
        message,
    };
    // Levels of open blocks: (nodes so far, the node that opened the level).
    let mut levels: Vec<(Vec<Node>, Option<Node>)> = vec![(Vec::new(), None)];
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let mut toks = tokens(raw).into_iter().peekable();
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
                        for (path, text) in files {
                            let canon = path.canonicalize().unwrap_or(path.clone());
                            if stack
                                .iter()
                                .any(|p| p.canonicalize().unwrap_or(p.clone()) == canon)
                            {
                                return Err(err(
                                    line,
                                    format!("include {}: includes itself", path.display()),
                                ));
                            }
                            stack.push(path.clone());
                            let nodes = parse_file(&text, &path, inc, stack)?;
                            stack.pop();
                            if let Some(top) = levels.last_mut() {
                                top.0.extend(nodes);
                            }
                        }
                    } else if opens {
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
}
