//! `pipeline rollout --load RATE` on a real nginx front door on loopback (the role's template, the canary
//! split as the rollout writes it): the rollout's synthetic load, from the tool's own load generator, goes
//! through the front door next to real requests, the JSON access log marks each of its requests
//! synthetic (the header the generator sets, the field the role's `log_format` logs), both arms get
//! some, and once stopped it sends nothing more.

use std::time::Duration;

use pipeline::rollout::front_door::LogTail;
use pipeline::rollout::load::SyntheticLoad;
use pipeline::rollout::world::Arm;

use super::rollout_front_door::{get, Door};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_synthetic_load_goes_through_the_front_door_and_is_logged_apart_from_real_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let door = Door::start(tmp.path(), r#"503 "broken""#);
    door.set_weight(25);
    let mut tail = LogTail::new(Some(door.canary.clone()));
    tail.skip_existing(&door.log).unwrap();

    let load = SyntheticLoad::start(&format!("http://127.0.0.1:{}/", door.front), 50.0).unwrap();
    let front = door.front;
    let real = tokio::task::spawn_blocking(move || {
        (0..60)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(30));
                get(front, false)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let totals = load.stop().await.unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let logged = tail.read(&door.log).unwrap();

    let (synthetic, organic): (Vec<_>, Vec<_>) = logged.iter().partition(|o| o.synthetic);
    assert_eq!(
        organic.len(),
        real.len(),
        "real requests lost or marked synthetic"
    );
    // About 50 req/s for about 2 s; every request the generator finished is in the log (requests
    // abandoned in flight at the stop are logged by nginx too, as 499).
    assert!(
        (60..=160).contains(&totals.requests),
        "{totals:?} in about 2 s at 50 req/s"
    );
    assert_eq!(totals.failed, 0, "{totals:?}");
    assert!(
        synthetic.len() as u64 >= totals.requests && synthetic.len() as u64 <= totals.requests + 64,
        "{} synthetic lines for {totals:?}",
        synthetic.len()
    );
    // The split applies to synthetic requests as to real ones: both arms get some.
    let on = |arm: Arm| synthetic.iter().filter(|o| o.arm == arm).count();
    assert!(
        on(Arm::Canary) > 0 && on(Arm::Stable) > 0,
        "{} canary, {} stable",
        on(Arm::Canary),
        on(Arm::Stable)
    );
    assert!(synthetic
        .iter()
        .filter(|o| o.arm == Arm::Canary)
        .all(|o| o.status == Some(503)));

    // Stopped means stopped: nothing more reaches the front door.
    std::thread::sleep(Duration::from_millis(700));
    let later = tail.read(&door.log).unwrap();
    assert!(later.iter().all(|o| !o.synthetic), "{later:?}");
    drop(door);
}
