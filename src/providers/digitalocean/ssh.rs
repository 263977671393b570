//! SSH around a droplet: the readiness probe (does the port answer with an SSH banner?) and forgetting the
//! host keys of addresses DigitalOcean hands out again.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::ui::Ui;

const SSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const SSH_BANNER_TIMEOUT: Duration = Duration::from_secs(5);

/// Removes `ips` from the deployment's known_hosts (`<state_dir>/known_hosts`, shared with Ansible runs):
/// DigitalOcean reuses addresses, and a stale key there would make SSH refuse the new machine. Best effort.
pub fn forget_host_keys(state_dir: &Path, ips: &[Ipv4Addr], ui: &Ui) {
    let file = state_dir.join("known_hosts");
    if ips.is_empty() || !file.exists() {
        return;
    }
    for ip in ips {
        let forget = crate::process::Cmd::new(
            format!("forget the old SSH host key of {ip} in {}", file.display()),
            "ssh-keygen",
        )
        .arg("-R")
        .arg(ip.to_string())
        .arg("-f")
        .arg(&file)
        .install_hint("; install it with: apt-get install openssh-client");
        if let Err(e) = forget.run() {
            ui.warn(e.to_string());
        }
    }
}

/// Connects to `ip:port` and reads the server's first bytes: ready when they are an SSH banner (`SSH-…`).
pub async fn ssh_answers(ip: Ipv4Addr, port: u16) -> Result<(), String> {
    let addr = SocketAddr::from((ip, port));
    let mut stream =
        tokio::time::timeout(SSH_CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| "connection timed out".to_string())?
            .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(SSH_BANNER_TIMEOUT, stream.read(&mut buf))
        .await
        .map_err(|_| "no SSH banner yet".to_string())?
        .map_err(|e| e.to_string())?;
    if buf[..n].starts_with(b"SSH-") {
        Ok(())
    } else {
        Err("the port answers, but not with an SSH banner".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ssh_probe_accepts_a_banner_and_rejects_other_servers() {
        use tokio::io::AsyncWriteExt;
        for (greeting, ok) in [
            (&b"SSH-2.0-OpenSSH_9.6\r\n"[..], true),
            (b"HTTP/1.1 400\r\n", false),
        ] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                s.write_all(greeting).await.unwrap();
            });
            let r = ssh_answers(Ipv4Addr::LOCALHOST, port).await;
            assert_eq!(r.is_ok(), ok, "{r:?}");
            server.await.unwrap();
        }
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        assert!(ssh_answers(Ipv4Addr::LOCALHOST, port).await.is_err());
    }
}
