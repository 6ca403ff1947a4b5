//! Tickle ACKs (nsm::tickle, what nfs-server's helper sends once a moved
//! address is up), on this machine's kernel: a client holds an idle TCP
//! connection to an address that vip then moves to another namespace. The
//! client notices nothing by itself; one tickle from the taking namespace
//! and its connection is reset, so that it reconnects at once. vip's stop
//! noted the connection on its way out, for the server's stop to record.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use handoff_tests::{needs_root, Host, Lan, Scratch};
use nix::sched::{setns, CloneFlags};

const VIP: &str = "192.0.2.100";

/// Run `f` on a thread inside `netns` (a network namespace is per thread;
/// sockets keep the one they were made in).
fn in_netns<T: Send + 'static>(netns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{netns}");
    std::thread::spawn(move || {
        let ns = File::open(&path).expect("the namespace");
        setns(ns, CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("the thread")
}

fn vip(h: &Host, scratch: &Scratch) -> handoff_tests::AgentCmd {
    h.agent("vip")
        .param("ip", VIP)
        .param("cidr_netmask", "24")
        .param("nic", "eth0")
        .env(
            "HA_RSCTMP",
            scratch.join(&format!("rsctmp-{}", h.name)).display(),
        )
        .env("OCF_RESKEY_CRM_meta_timeout", "20000")
}

#[test]
fn a_tickle_from_the_taking_node_resets_a_dead_connection_at_once() {
    needs_root!("a_tickle_from_the_taking_node_resets_a_dead_connection_at_once");
    let scratch = Scratch::new("tickle");
    let lan = Lan::new(&["client", "old", "new"]);
    let (client, old, new) = (lan.host("client"), lan.host("old"), lan.host("new"));
    vip(old, &scratch)
        .run("start")
        .expect(0, "vip start on old");

    // The server side: accept one connection and keep it until the end.
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let ns = old.netns.clone();
    let server = std::thread::spawn(move || {
        in_netns(&ns, move || {
            let l = TcpListener::bind((VIP, 2049)).expect("listen on the address");
            ready_tx.send(()).expect("ready");
            let kept = l.accept().expect("accept");
            let _ = done_rx.recv();
            drop(kept);
        })
    });
    ready_rx.recv().expect("the server listens");
    let mut stream = in_netns(&client.netns, || {
        TcpStream::connect((VIP, 2049)).expect("connect")
    });
    let conn = nsm::tickle::Conn {
        server: stream.peer_addr().expect("peer"),
        client: stream.local_addr().expect("local"),
    };

    // The address moves; nothing was in flight, so the client knows nothing.
    vip(old, &scratch).run("stop").expect(0, "vip stop on old");
    vip(new, &scratch)
        .run("start")
        .expect(0, "vip start on new");
    let mut buf = [0u8; 16];
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let idle = stream.read(&mut buf);
    assert!(
        matches!(&idle, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "without a tickle the connection should stay silent, got {idle:?}"
    );

    // What vip's stop noted for the server's stop to record: the
    // connection, as the server saw it.
    let ip = VIP.parse().expect("the address");
    let noted = nsm::tickle::Departed::new(&scratch.join("rsctmp-old"), ip).take();
    assert!(
        noted.contains(&conn),
        "vip's stop noted {noted:?}, not {conn:?}"
    );

    // One tickle from the namespace that has the address now.
    let t = Instant::now();
    let sent = in_netns(&new.netns, move || nsm::tickle::send(&[conn]));
    assert_eq!(sent, Ok(1), "the tickle was not sent");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let after = stream.read(&mut buf);
    let took = t.elapsed();
    println!("tickle_to_reset_ms {:.1}", took.as_secs_f64() * 1000.0);
    assert!(
        matches!(&after, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "the client's connection should be reset by the taking namespace, got {after:?} after {took:?}"
    );
    assert!(
        in_netns(&client.netns, || TcpStream::connect((VIP, 2049))).is_err(),
        "nothing listens on the new node in this test: a reconnect is refused at once"
    );
    let _ = done_tx.send(());
    let _ = server.join();
}

#[test]
fn the_connections_to_an_address_are_read_from_the_socket_table() {
    needs_root!("the_connections_to_an_address_are_read_from_the_socket_table");
    // This process's own namespace: a listener and a client on loopback.
    let l = TcpListener::bind(("127.0.0.1", 0)).expect("listen");
    let at = l.local_addr().expect("addr");
    let c = TcpStream::connect(at).expect("connect");
    let _s = l.accept().expect("accept");
    let conns = nsm::tickle::connections(at.ip(), &nsm::tickle::tcp_table());
    let mine = nsm::tickle::Conn {
        server: at,
        client: c.local_addr().expect("local"),
    };
    assert!(conns.contains(&mine), "{mine:?} not in {conns:?}");
    // The listener itself is no client connection.
    assert!(conns.iter().all(|x| x.client.port() != 0));
    // nfsd listens on both families at once: an IPv4 client of an IPv6
    // listener is in tcp6, as ::ffff:a.b.c.d.
    let l6 = TcpListener::bind(("::", 0)).expect("listen on ::");
    let port = l6.local_addr().expect("addr").port();
    let c4 = TcpStream::connect(("127.0.0.1", port)).expect("connect over IPv4");
    let _s4 = l6.accept().expect("accept");
    let conns = nsm::tickle::connections(at.ip(), &nsm::tickle::tcp_table());
    let mine = nsm::tickle::Conn {
        server: std::net::SocketAddr::new(at.ip(), port),
        client: c4.local_addr().expect("local"),
    };
    assert!(conns.contains(&mine), "{mine:?} not in {conns:?}");
}
