//! The results: one row per figure, printed as a table and written as JSON.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: &'static str,
    pub size: String,
    pub figure: String,
    pub value: f64,
    pub unit: &'static str,
    /// The target as text (`<= 250`), when the figure has one.
    pub target: Option<String>,
    pub verdict: Verdict,
    /// A correctness check: a miss fails the run at any size.
    pub must: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Met,
    Missed,
    /// A figure without a target.
    Info,
}

impl Row {
    pub fn info(
        scenario: &'static str,
        size: impl ToString,
        figure: impl ToString,
        value: f64,
        unit: &'static str,
    ) -> Row {
        Row {
            scenario,
            size: size.to_string(),
            figure: figure.to_string(),
            value,
            unit,
            target: None,
            verdict: Verdict::Info,
            must: false,
        }
    }

    /// Marks the row a correctness check.
    pub fn must(mut self) -> Row {
        self.must = true;
        self
    }

    /// Met when the value is at most `bound`.
    pub fn at_most(mut self, bound: f64) -> Row {
        self.target = Some(format!("<= {}", number(bound)));
        self.verdict = if self.value <= bound {
            Verdict::Met
        } else {
            Verdict::Missed
        };
        self
    }

    /// Met when the value is exactly `wanted`.
    pub fn exactly(mut self, wanted: f64) -> Row {
        self.target = Some(format!("= {}", number(wanted)));
        self.verdict = if self.value == wanted {
            Verdict::Met
        } else {
            Verdict::Missed
        };
        self
    }
}

fn number(v: f64) -> String {
    if (v.fract() == 0.0 && v.abs() < 1e15) || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The rows as an aligned text table.
pub fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.scenario.to_owned(),
                r.size.clone(),
                r.figure.clone(),
                format!("{} {}", number(r.value), r.unit).trim().to_owned(),
                r.target.clone().unwrap_or_default(),
                match r.verdict {
                    Verdict::Met => "met",
                    Verdict::Missed => "MISSED",
                    Verdict::Info => "",
                }
                .to_owned(),
            ]
        })
        .collect();
    let header = ["scenario", "size", "figure", "value", "target", "verdict"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&cells) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The rows as a Markdown table, for docs/performance.md.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | size | figure | value | target | verdict |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} {} | {} | {} |\n",
            r.scenario,
            r.size,
            r.figure,
            number(r.value),
            r.unit,
            r.target.clone().unwrap_or_default(),
            match r.verdict {
                Verdict::Met => "met",
                Verdict::Missed => "**missed**",
                Verdict::Info => "",
            }
        ));
    }
    out
}
