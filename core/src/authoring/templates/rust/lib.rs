//! {{name}}: a Continuum command plugin in Rust. Build with `continuum plugin build`.

// `generate_all` also generates the host interfaces the world imports (from wit/deps).
wit_bindgen::generate!({ path: "wit", world: "local:{{name}}/{{name}}", generate_all });

use continuum::host::log::{write, Level};

struct Plugin;

impl Guest for Plugin {
    fn greet(name: String, style: Option<Style>) -> Result<String, String> {
        if name.trim().is_empty() {
            return Err("name is empty".into());
        }
        write(Level::Info, &format!("greeting {name}"));
        let text = format!("Hello, {name}!");
        Ok(match style.unwrap_or(Style::Plain) {
            Style::Plain => text,
            Style::Loud => text.to_uppercase(),
        })
    }
}

export!(Plugin);
