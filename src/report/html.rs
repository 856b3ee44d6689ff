//! The report as one self-contained HTML file: data, script and styles inline, nothing
//! fetched. The drawing code is `report.js` (plain SVG and DOM calls); the data is the
//! [`Report`] as JSON in a `<script type="application/json">` element, escaped so that no
//! text in it can close that element.

use super::{LAMBDA_STEP, Report};

const TEMPLATE: &str = include_str!("report.html");
const STYLE: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");

/// Renders `report` as HTML.
pub fn render(report: &Report) -> Result<String, serde_json::Error> {
    let data = script_safe_json(&serde_json::to_string(report)?);
    let mut html = String::with_capacity(TEMPLATE.len() + STYLE.len() + SCRIPT.len() + data.len());
    // Fill the placeholders in one pass, so that nothing inserted is scanned again.
    let mut rest = TEMPLATE;
    while let Some(start) = rest.find("{{") {
        let end = start
            + rest[start..]
                .find("}}")
                .expect("template placeholders are closed");
        html.push_str(&rest[..start]);
        match &rest[start + 2..end] {
            "STYLE" => html.push_str(STYLE),
            "SCRIPT" => html.push_str(SCRIPT),
            "DATA" => html.push_str(&data),
            "LAMBDA_STEP" => html.push_str(&LAMBDA_STEP.to_string()),
            other => unreachable!("unknown template placeholder {other}"),
        }
        rest = &rest[end + 2..];
    }
    html.push_str(rest);
    Ok(html)
}

/// JSON that can sit inside a `<script>` element: `<`, `>` and `&` (which only occur inside
/// strings) become `\u003c`, `\u003e` and `\u0026`, so no `</script>` or `<!--` survives.
fn script_safe_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for ch in json.chars() {
        match ch {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_its_script_element() {
        let json = serde_json::to_string(
            &serde_json::json!({"t": "</script><script>alert(1)</script> & <!--"}),
        )
        .unwrap();
        let safe = script_safe_json(&json);
        assert!(!safe.contains('<') && !safe.contains('>') && !safe.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["t"], "</script><script>alert(1)</script> & <!--");
    }

    #[test]
    fn the_template_uses_every_part_once() {
        for part in ["{{STYLE}}", "{{SCRIPT}}", "{{DATA}}", "{{LAMBDA_STEP}}"] {
            assert_eq!(TEMPLATE.matches(part).count(), 1, "{part}");
        }
        // Nothing may be fetched: no external URLs in the template, styles or script.
        // (The SVG namespace is a name, not a fetch.)
        for text in [TEMPLATE, STYLE, SCRIPT] {
            let text = text.replace("\"http://www.w3.org/2000/svg\"", "");
            assert!(!text.contains("http://"));
            assert!(!text.contains("https://"));
            assert!(!text.contains("src=\""));
        }
    }
}
