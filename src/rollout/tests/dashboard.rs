//! A rollout whose monitor does not take its status: one warning, and the dashboard is not asked again
//! for the rollout's event at the end. A loopback server stands for the monitor's dashboard and refuses
//! every push with a 500, counting them (each refused push is one warning).

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::settings;
use crate::rollout::exec::Ending;
use crate::rollout::monitor::Monitor;
use crate::rollout::state::RolloutState;
use crate::settings::{Config, Global};
use crate::ui::Ui;

/// A dashboard on loopback answering 500 to every request; returns its port and the request count.
fn refusing_dashboard() -> (u16, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (port, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_that_refused_the_rollouts_status_is_not_asked_again_for_its_event() {
    let dir = tempfile::tempdir().unwrap();
    let (port, pushes) = refusing_dashboard();
    let inventory = dir.path().join("inventory.ini");
    std::fs::write(
        &inventory,
        format!(
            "[checkbox]\ncheckbox-1 ansible_host=192.0.2.1\n[lb]\nlb ansible_host=192.0.2.3\n\
             [monitor]\nmonitor ansible_host=127.0.0.1 dashboard_listen_port={port}\n"
        ),
    )
    .unwrap();
    let global = Global {
        config: Config::parse("", dir.path().join("pipeline.toml")).unwrap(),
        state_dir: dir.path().join(".pipeline"),
        ui: Ui::new(true),
    };
    let mut recorded = settings(dir.path());
    recorded.inventory = inventory;
    let state = RolloutState::new(
        recorded,
        vec!["checkbox-1".into()],
        "checkbox-canary".into(),
        "lb".into(),
    );
    let mut monitor = Monitor::dashboard_only(&state, &global);
    monitor.recorded(&state);
    monitor
        .finish(&state, Some(&Ending::Aborted), &global.ui)
        .await;
    assert_eq!(
        pushes.load(Ordering::SeqCst),
        1,
        "the status push was refused (one warning); the event was not pushed after it"
    );
}
