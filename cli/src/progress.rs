//! A progress line for bulk commands (redrive, recover, import): a bar on a terminal,
//! nothing until the summary when output goes to a file or a pipe.

use std::io::{IsTerminal, Write};

pub struct Progress {
    label: String,
    total: Option<usize>,
    done: usize,
    tty: bool,
}

const WIDTH: usize = 30;

impl Progress {
    /// `total` is `None` when the amount of work is not known up front.
    pub fn new(label: &str, total: Option<usize>) -> Self {
        let p = Self {
            label: label.to_string(),
            total,
            done: 0,
            tty: std::io::stderr().is_terminal(),
        };
        p.draw();
        p
    }

    pub fn advance(&mut self, n: usize) {
        self.done += n;
        self.draw();
    }

    pub fn done(&self) -> usize {
        self.done
    }

    /// The line as drawn: `label [#####.....] 5/10` or `label 5` without a total.
    pub fn render(&self) -> String {
        match self.total {
            Some(total) if total > 0 => {
                let filled = (self.done.min(total) * WIDTH) / total;
                format!(
                    "{} [{}{}] {}/{}",
                    self.label,
                    "#".repeat(filled),
                    ".".repeat(WIDTH - filled),
                    self.done,
                    total
                )
            }
            _ => format!("{} {}", self.label, self.done),
        }
    }

    fn draw(&self) {
        if self.tty {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r{}", self.render());
            let _ = err.flush();
        }
    }

    /// Ends the line (on a terminal) so the summary starts on its own.
    pub fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_bar_with_a_total_and_a_count_without() {
        let mut p = Progress::new("redrive", Some(4));
        p.advance(1);
        assert_eq!(
            p.render(),
            format!("redrive [{}{}] 1/4", "#".repeat(7), ".".repeat(23))
        );
        p.advance(5);
        assert!(
            p.render().ends_with("6/4"),
            "more than expected still renders"
        );
        assert!(p.render().contains(&"#".repeat(30)));
        let mut q = Progress::new("recover", None);
        q.advance(3);
        assert_eq!(q.render(), "recover 3");
    }
}
