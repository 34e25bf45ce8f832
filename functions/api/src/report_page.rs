//! The quality report as one self-contained HTML page: inline CSS and SVG charts, no script, no
//! font or image from the network, so it opens from disk offline. Rendered from
//! [`medrec_store::report::QualityReport`] by `medrec report` and by `GET /report`.
//!
//! It shows what the report holds: counts, reasons, flags, line numbers and ids. Record values
//! appear only in the "Values behind repairs" section, which the report holds only when it was
//! gathered with `show_values`.

use std::fmt::Write;

use medrec_store::report::{Histogram, QualityReport, TrendPoint, TREND_LOADS};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn percent(rate: f64) -> String {
    if rate == 0.0 {
        "0 %".to_owned()
    } else if rate < 0.001 {
        format!("{:.3} %", rate * 100.0)
    } else {
        format!("{:.1} %", rate * 100.0)
    }
}

/// Thousands separated by a thin space.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{2009}');
        }
        out.push(d);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1d2330}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #d5d9e0;padding-bottom:.3rem}
p.meta{color:#5b6475;margin-top:0}
table{border-collapse:collapse;width:100%;margin:.6rem 0}
th,td{padding:.25rem .5rem;border-bottom:1px solid #eceef2;text-align:left;vertical-align:top}
th{background:#f5f6f8;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td{background:#fff1f0}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}
.card{border:1px solid #d5d9e0;border-radius:6px;padding:.6rem .9rem;min-width:9rem}
.card b{display:block;font-size:1.3rem}
.charts{display:flex;flex-wrap:wrap;gap:1rem}
figure{margin:0;border:1px solid #eceef2;border-radius:6px;padding:.5rem}
figcaption{font-weight:600;font-size:.9rem}
.none{color:#5b6475;font-style:italic}
code{font-size:.9em}
";

/// The page.
pub fn render(report: &QualityReport) -> String {
    let mut html = String::with_capacity(64 * 1024);
    let t = &report.totals;
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>medrec quality report</title><style>{STYLE}</style></head><body>\
         <h1>medrec quality report</h1>\
         <p class=\"meta\">Generated {} from the database. Counts, reasons, flags, line numbers \
         and ids only{}.</p>",
        report.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
        if report.values.is_empty() {
            ": no record values"
        } else {
            "; the values section shows source values (--show-values)"
        }
    );
    html.push_str("<div class=\"cards\" id=\"totals\">");
    for (label, value) in [
        ("persons", t.persons),
        ("loads", t.runs),
        ("failed loads", t.failed_runs),
        ("raw rows", t.raw_rows),
        ("loaded", t.loaded_rows),
        ("duplicates", t.duplicate_rows),
        ("quarantined", t.quarantined_rows),
    ] {
        let _ = write!(
            html,
            "<div class=\"card\"><b>{}</b>{label}</div>",
            thousands(value)
        );
    }
    html.push_str("</div>");

    rows_by_table(&mut html, report);
    loads(&mut html, report);
    quarantine(&mut html, report);
    flags(&mut html, report);
    sources(&mut html, report);
    features(&mut html, report);
    trend(&mut html, &report.trend);
    if !report.values.is_empty() {
        values(&mut html, report);
    }
    html.push_str("</body></html>\n");
    html
}

fn rows_by_table(html: &mut String, report: &QualityReport) {
    html.push_str(
        "<h2 id=\"tables\">Clean tables</h2><table><tr><th>table</th><th class=\"n\">clean rows</th>\
         <th class=\"n\">loads</th><th class=\"n\">raw rows read</th><th class=\"n\">duplicates</th>\
         <th class=\"n\">quarantined</th></tr>",
    );
    for t in &report.totals.tables {
        let _ = write!(
            html,
            "<tr data-table=\"{0}\"><td>{0}</td><td class=\"n\">{1}</td><td class=\"n\">{2}</td>\
             <td class=\"n\">{3}</td><td class=\"n\">{4}</td><td class=\"n\">{5}</td></tr>",
            escape(&t.table),
            thousands(t.clean_rows),
            thousands(t.loads),
            thousands(t.raw_rows),
            thousands(t.duplicate_rows),
            thousands(t.quarantined_rows),
        );
    }
    html.push_str("</table>");
}

fn loads(html: &mut String, report: &QualityReport) {
    let _ = write!(
        html,
        "<h2 id=\"loads\">Loads</h2><p class=\"meta\">The newest {} of {} load(s), newest first.</p>",
        report.loads.len(),
        report.totals.runs
    );
    if report.loads.is_empty() {
        html.push_str("<p class=\"none\">No loads yet.</p>");
        return;
    }
    html.push_str(
        "<table><tr><th class=\"n\">run</th><th>table</th><th>source</th><th>status</th>\
         <th class=\"n\">raw</th><th class=\"n\">loaded</th><th class=\"n\">duplicate</th>\
         <th class=\"n\">quarantined</th><th>when</th><th class=\"n\">rows/s</th></tr>",
    );
    for load in &report.loads {
        let failed = load.status == "failed";
        let status = match (&load.error, failed) {
            (Some(error), true) => format!("failed: {}", escape(error)),
            _ => escape(&load.status),
        };
        let _ = write!(
            html,
            "<tr class=\"{}\"><td class=\"n\">{}</td><td>{}</td><td><code>{}</code></td><td>{status}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td>{}</td><td class=\"n\">{}</td></tr>",
            if failed { "failed" } else { "" },
            load.run_id,
            escape(&load.table),
            escape(&load.source),
            thousands(load.raw_rows),
            thousands(load.loaded_rows),
            thousands(load.duplicate_rows),
            thousands(load.quarantined_rows),
            load.started_at.format("%Y-%m-%d %H:%M:%S"),
            load.rows_per_second()
                .map(|r| thousands(r.round() as i64))
                .unwrap_or_else(|| "-".into()),
        );
    }
    html.push_str("</table>");
}

fn quarantine(html: &mut String, report: &QualityReport) {
    html.push_str(
        "<h2 id=\"quarantine\">Quarantine</h2><p class=\"meta\">Rows that could not be loaded, \
         by table and reason (in all runs), then the runs with the most such rows and the first \
         line numbers of their files \
         (<code>SELECT * FROM quarantine WHERE run_id = …</code> has the lines).</p>",
    );
    if report.quarantine.is_empty() {
        html.push_str("<p class=\"none\">No row was quarantined.</p>");
        return;
    }
    html.push_str(
        "<table><tr><th>table</th><th>reason</th><th class=\"n\">rows, all runs</th>\
         <th class=\"n\">runs</th><th class=\"n\">run</th><th class=\"n\">rows</th>\
         <th>lines</th></tr>",
    );
    for group in &report.quarantine {
        let lines = group
            .lines
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let more = if group.rows > group.lines.len() as i64 {
            ", …"
        } else {
            ""
        };
        let _ = write!(
            html,
            "<tr class=\"reason\" data-reason=\"{1}\"><td>{0}</td><td>{1}</td><td class=\"n\">{2}</td>\
             <td class=\"n\">{3}</td><td class=\"n\">{4}</td><td class=\"n\">{5}</td>\
             <td>{lines}{more}</td></tr>",
            escape(&group.table),
            escape(&group.reason),
            thousands(group.reason_rows),
            thousands(group.reason_runs),
            group.run_id,
            thousands(group.rows),
        );
    }
    html.push_str("</table>");
}

fn flags(html: &mut String, report: &QualityReport) {
    html.push_str(
        "<h2 id=\"flags\">Quality flags</h2><p class=\"meta\">Rows whose values the cleaners \
         nulled, repaired or marked (docs/cleaning.md), per table and source column, counted as \
         each file was cleaned, with the share of the rows kept from the table's loads.</p>",
    );
    if report.flags.is_empty() {
        html.push_str("<p class=\"none\">No flags raised.</p>");
        return;
    }
    html.push_str(
        "<table><tr><th>table</th><th>column</th><th>flag</th><th class=\"n\">rows</th>\
         <th class=\"n\">rate</th></tr>",
    );
    for flag in &report.flags {
        let column = match &flag.column {
            Some(column) => escape(column),
            None => "<span class=\"none\">not recorded</span>".to_owned(),
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{column}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&flag.table),
            escape(&flag.flag),
            thousands(flag.rows),
            percent(flag.rate)
        );
    }
    html.push_str("</table>");
}

fn sources(html: &mut String, report: &QualityReport) {
    html.push_str(
        "<h2 id=\"sources\">Sources</h2><p class=\"meta\">A source is the directory or S3 prefix \
         its files came from.</p>",
    );
    if report.sources.is_empty() {
        html.push_str("<p class=\"none\">No files loaded.</p>");
    } else {
        html.push_str(
            "<table><tr><th>source</th><th class=\"n\">files</th><th class=\"n\">failed</th>\
             <th class=\"n\">raw rows</th><th class=\"n\">duplicate share</th>\
             <th class=\"n\">quarantine rate</th><th class=\"n\">flagged rows</th></tr>",
        );
        for s in &report.sources {
            let _ = write!(
                html,
                "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&s.source),
                thousands(s.files),
                thousands(s.failed_files),
                thousands(s.raw_rows),
                percent(s.duplicate_share),
                percent(s.quarantine_rate),
                percent(s.flagged_rate)
            );
        }
        html.push_str("</table>");
    }
    if !report.vendor_files.is_empty() {
        html.push_str(
            "<h3>Vendor files</h3><table><tr><th>vendor</th><th>outcome</th><th>reason</th>\
             <th class=\"n\">files</th></tr>",
        );
        for v in &report.vendor_files {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                escape(&v.vendor),
                escape(&v.status),
                escape(v.reason.as_deref().unwrap_or("")),
                thousands(v.files)
            );
        }
        html.push_str("</table>");
    }
}

fn features(html: &mut String, report: &QualityReport) {
    html.push_str(
        "<h2 id=\"features\">Features</h2><p class=\"meta\">Coverage: the share of persons with \
         features whose value is not NULL (docs/features.md says what NULL means for each).</p>\
         <table><tr><th>feature</th><th>type</th><th>definition</th><th class=\"n\">non-NULL</th>\
         <th class=\"n\">coverage</th></tr>",
    );
    for f in &report.features {
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&f.name),
            escape(&f.kind),
            escape(&f.description),
            thousands(f.non_null),
            percent(if f.persons > 0 {
                f.non_null as f64 / f.persons as f64
            } else {
                0.0
            })
        );
    }
    html.push_str("</table><div class=\"charts\">");
    for f in &report.features {
        if let Some(h) = &f.histogram {
            let _ = write!(
                html,
                "<figure class=\"chart\"><figcaption>{}</figcaption>{}</figure>",
                escape(&f.name),
                histogram_svg(h)
            );
        }
    }
    html.push_str("</div>");
}

fn axis_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e9 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn histogram_svg(h: &Histogram) -> String {
    let (w, ht, pad) = (300.0, 140.0, 18.0);
    let top = h.counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bar = (w - 2.0 * pad) / h.counts.len() as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{w}\" height=\"{ht}\" \
         viewBox=\"0 0 {w} {ht}\">"
    );
    for (i, n) in h.counts.iter().enumerate() {
        let bh = (ht - 2.0 * pad) * *n as f64 / top;
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#4a78c2\"><title>{n}</title></rect>",
            pad + i as f64 * bar,
            ht - pad - bh,
            (bar - 1.0).max(1.0),
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{pad}\" y=\"{:.0}\" font-size=\"10\">{}</text>\
         <text x=\"{:.0}\" y=\"{:.0}\" font-size=\"10\" text-anchor=\"end\">{}</text>\
         <text x=\"{pad}\" y=\"12\" font-size=\"10\">max {} persons</text></svg>",
        ht - 4.0,
        axis_number(h.min),
        w - pad,
        ht - 4.0,
        axis_number(h.max),
        top as i64
    );
    svg
}

fn trend(html: &mut String, points: &[TrendPoint]) {
    let _ = write!(
        html,
        "<h2 id=\"trend\">Trend</h2><p class=\"meta\">The newest loads (at most {TREND_LOADS}), in \
         load order: each one's raw rows (bars) and quarantine rate (line).</p>",
    );
    if points.is_empty() {
        html.push_str("<p class=\"none\">No loads yet.</p>");
        return;
    }
    let (w, ht, pad) = (900.0, 200.0, 24.0);
    let top_rows = points.iter().map(|p| p.raw_rows).max().unwrap_or(1).max(1) as f64;
    let top_rate = points
        .iter()
        .map(|p| p.quarantine_rate)
        .fold(0.0, f64::max)
        .max(0.0001);
    let step = (w - 2.0 * pad) / points.len() as f64;
    let mut svg = format!(
        "<figure class=\"chart\"><figcaption>raw rows and quarantine rate per load</figcaption>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"100%\" viewBox=\"0 0 {w} {ht}\">"
    );
    let mut line = String::new();
    for (i, p) in points.iter().enumerate() {
        let bh = (ht - 2.0 * pad) * p.raw_rows as f64 / top_rows;
        let x = pad + i as f64 * step;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#9db7e0\">\
             <title>run {} ({}): {} raw rows, {} quarantined</title></rect>",
            ht - pad - bh,
            (step - 1.0).max(0.5),
            p.run_id,
            escape(&p.table),
            p.raw_rows,
            percent(p.quarantine_rate)
        );
        let y = ht - pad - (ht - 2.0 * pad) * p.quarantine_rate / top_rate;
        let _ = write!(line, "{:.1},{y:.1} ", x + step / 2.0);
    }
    let _ = write!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#c2452d\" stroke-width=\"2\"/>\
         <text x=\"{pad}\" y=\"14\" font-size=\"11\">max {} rows; max quarantine rate {}</text>\
         </svg></figure>",
        line.trim_end(),
        top_rows as i64,
        percent(top_rate)
    );
    html.push_str(&svg);
}

fn values(html: &mut String, report: &QualityReport) {
    html.push_str(
        "<h2 id=\"values\">Values behind repairs</h2><p class=\"meta\">Shown because the report \
         was made with --show-values: the most common source values of each repaired column.</p>\
         <table><tr><th>table</th><th>column</th><th>source value</th><th class=\"n\">rows</th></tr>",
    );
    for v in &report.values {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td class=\"n\">{}</td></tr>",
            escape(&v.table),
            escape(&v.column),
            escape(&v.value),
            thousands(v.rows)
        );
    }
    html.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1\u{2009}234\u{2009}567");
        assert_eq!(thousands(-1000), "-1\u{2009}000");
    }
}
