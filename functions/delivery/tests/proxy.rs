//! The delivery client ignores proxy variables in its environment: a proxy resolves the
//! target name itself, past the resolver that keeps deliveries off private addresses.
//!
//! This binary holds this one test, so the variables it sets are seen by nothing else.

use std::io::ErrorKind;
use std::time::Duration;

#[test]
fn proxy_variables_in_the_environment_are_ignored() {
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let url = format!("http://{}", proxy.local_addr().unwrap());
    // SAFETY: the only test of this binary sets them before it starts any thread of its own.
    unsafe {
        for name in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            std::env::set_var(name, &url);
        }
        std::env::remove_var("NO_PROXY");
        std::env::remove_var("no_proxy");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for client in [
            skyhook_delivery::http_client(Duration::from_secs(2)).unwrap(),
            skyhook_delivery::http_client_for(Duration::from_secs(2), false).unwrap(),
        ] {
            // A name that resolves nowhere: only a proxy could take this request.
            for target in [
                "http://skyhook-proxy-test.invalid/hook",
                "https://skyhook-proxy-test.invalid/hook",
            ] {
                let sent = client.post(target).body("{}").send().await;
                assert!(sent.is_err(), "{target} cannot be reached");
            }
        }
    });
    match proxy.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the proxy was contacted: {other:?}"),
    }
}
