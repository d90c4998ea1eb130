//! Reading passwords and recovery codes: from standard input (one per
//! line, for scripts and tests) or by prompting on the terminal without
//! echo. Everything read is held in zeroizing buffers.

use std::io::Read;

use anyhow::{anyhow, bail, Context as _};
use zeroize::Zeroizing;

/// Most bytes read from standard input: a few lines of secrets, no more.
const STDIN_LIMIT: u64 = 64 * 1024;

/// Reads `names.len()` lines from standard input, one secret per line,
/// without their line endings (`\n` or `\r\n`). `names` say what each
/// line is, for the error when lines are missing.
pub fn stdin_lines(names: &[&str]) -> anyhow::Result<Vec<Zeroizing<String>>> {
    let mut all = Zeroizing::new(String::new());
    std::io::stdin()
        .take(STDIN_LIMIT)
        .read_to_string(&mut all)
        .context("cannot read standard input")?;
    let mut lines: Vec<Zeroizing<String>> = all
        .split('\n')
        .map(|l| Zeroizing::new(l.strip_suffix('\r').unwrap_or(l).to_owned()))
        .collect();
    // "a\nb\n" splits into ["a", "b", ""]: the final empty piece is no line.
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if lines.len() < names.len() {
        bail!(
            "expected {} on standard input ({}), but got {} line{}",
            count_words(names.len()),
            names.join(", then "),
            lines.len(),
            if lines.len() == 1 { "" } else { "s" }
        );
    }
    lines.truncate(names.len());
    for (line, name) in lines.iter().zip(names) {
        if line.is_empty() {
            bail!("the {name} on standard input is empty");
        }
    }
    Ok(lines)
}

fn count_words(n: usize) -> String {
    match n {
        1 => "one line".into(),
        2 => "two lines".into(),
        n => format!("{n} lines"),
    }
}

/// What to tell someone whose terminal cannot be prompted.
pub const HINT_PASSWORD_STDIN: &str = "give it on standard input with --password-stdin";

/// Asks on the terminal, without echo. `hint` says what to do when there is
/// no terminal to ask on.
pub fn prompt(question: &str, hint: &str) -> anyhow::Result<Zeroizing<String>> {
    let answer = rpassword::prompt_password(question)
        .map_err(|e| anyhow!("cannot ask on a terminal ({e}); {hint}"))?;
    let answer = Zeroizing::new(answer);
    if answer.is_empty() {
        bail!("nothing was typed");
    }
    Ok(answer)
}

/// Asks for a new password twice; both must match.
pub fn prompt_new_password(question: &str, hint: &str) -> anyhow::Result<Zeroizing<String>> {
    let first = prompt(question, hint)?;
    let again = prompt("Type it again: ", hint)?;
    if *first != *again {
        bail!("the two passwords do not match; nothing was changed");
    }
    Ok(first)
}
