//! Tera templates for what the tool itself owns (inventory, ansible.cfg, reports), embedded from
//! `templates/` so the binary runs from any directory. The entry playbooks (`playbooks/`) are static files,
//! never rendered: no user value is ever written into text Ansible parses as a template.
//!
//! Only files ending in `.tera` are templates. Ansible roles and their `.j2` files are never loaded here:
//! Tera and Jinja2 share `{{ }}`, so anything holding Ansible expressions is copied verbatim instead.

use std::sync::OnceLock;

use include_dir::{include_dir, Dir};

static TEMPLATE_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates");

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("failed to render template {name}: {message}")]
    Render { name: String, message: String },
}

fn engine() -> &'static tera::Tera {
    static ENGINE: OnceLock<tera::Tera> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut tera = tera::Tera::default();
        let mut all = Vec::new();
        collect_files(&TEMPLATE_DIR, &mut all);
        let files: Vec<(String, String)> = all
            .into_iter()
            .filter(|f| f.path().extension().is_some_and(|e| e == "tera"))
            .map(|f| {
                let name = f.path().to_string_lossy().into_owned();
                let body = f
                    .contents_utf8()
                    .unwrap_or_else(|| panic!("template {name} is not UTF-8"))
                    .to_string();
                (name, body)
            })
            .collect();
        tera.add_raw_templates(files)
            .expect("embedded templates parse (checked by a unit test)");
        tera.autoescape_on(vec![".html.tera"]);
        tera
    })
}

/// Every file below `dir`, depth first.
pub fn collect_files<'a>(dir: &'a Dir<'a>, out: &mut Vec<&'a include_dir::File<'a>>) {
    for entry in dir.entries() {
        match entry {
            include_dir::DirEntry::Dir(d) => collect_files(d, out),
            include_dir::DirEntry::File(f) => out.push(f),
        }
    }
}

/// Renders embedded template `name` (path relative to `templates/`, e.g. `inventory.ini.tera`).
pub fn render(name: &str, context: &tera::Context) -> Result<String, TemplateError> {
    engine().render(name, context).map_err(|e| {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        TemplateError::Render {
            name: name.to_string(),
            message,
        }
    })
}

/// Names of all embedded templates (for tests and `--emit`).
pub fn names() -> Vec<String> {
    engine().get_template_names().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_embedded_template_parses() {
        assert!(!super::names().is_empty());
    }
}
