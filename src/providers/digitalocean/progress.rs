//! Progress of a DigitalOcean wait: one line per host.

use std::collections::HashMap;

use crate::ui::Ui;

/// One line per host while waiting: a spinner on a terminal, else a plain line whenever a host's state changes.
pub(super) struct Progress {
    bars: HashMap<String, indicatif::ProgressBar>,
    last: HashMap<String, String>,
    ui: Ui,
    plain: bool,
}

impl Progress {
    pub(super) fn new(ui: &Ui, names: &[String]) -> Self {
        let multi = ui.multi();
        let plain = multi.is_hidden();
        let bars = names
            .iter()
            .map(|n| (n.clone(), ui.spinner(&multi, n.clone())))
            .collect();
        Progress {
            bars,
            last: HashMap::new(),
            ui: ui.clone(),
            plain,
        }
    }

    pub(super) fn show(&mut self, name: &str, message: String) {
        if self.last.get(name) == Some(&message) {
            return;
        }
        if self.plain {
            self.ui.info(format!("{name}: {message}"));
        } else if let Some(bar) = self.bars.get(name) {
            bar.set_message(message.clone());
        }
        self.last.insert(name.to_string(), message);
    }

    pub(super) fn finish(&self) {
        self.bars.values().for_each(indicatif::ProgressBar::finish);
    }

    pub(super) fn abandon(&self) {
        self.bars.values().for_each(indicatif::ProgressBar::abandon);
    }
}
