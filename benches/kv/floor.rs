//! The physical floor of one sequential durable write on this machine: a
//! replicated put needs at least a client round trip and a leader-follower
//! round trip, both over loopback here, and a follower's fsync: 2 RTT +
//! 1 fsync when the leader's own fsync overlaps replication (etcd writes its
//! WAL while the AppendEntries are on the way), 2 RTT + 2 fsyncs when the
//! leader's log entry must be durable before its AppendEntries leave (the
//! smelt runtime's "durable before visible").

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// The median and 90th percentile of a probe's times.
#[derive(Clone, Copy)]
pub struct Dist {
    pub p50: Duration,
    pub p90: Duration,
}

pub struct Floor {
    /// Append 100 bytes to a growing file, then fdatasync (what the smelt
    /// runtime's log does: the size changes, so metadata is flushed too).
    pub fsync_append: Dist,
    /// Overwrite 100 bytes of a preallocated file, then fdatasync (what
    /// etcd's WAL does: segments are preallocated).
    pub fsync_overwrite: Dist,
    /// A 100-byte ping-pong over a loopback TCP connection (TCP_NODELAY).
    pub loopback_rtt: Dist,
}

fn dist(mut xs: Vec<Duration>) -> Dist {
    xs.sort_unstable();
    Dist {
        p50: xs[xs.len() / 2],
        p90: xs[xs.len() * 9 / 10],
    }
}

pub fn measure(dir: &Path) -> Floor {
    let payload = [b'x'; 100];
    let path = dir.join("fsync-floor");

    let mut f = std::fs::File::create(&path).expect("create the fsync probe file");
    let fsync_append = dist(
        (0..300)
            .map(|_| {
                let t = Instant::now();
                f.write_all(&payload).expect("write");
                f.sync_data().expect("fdatasync");
                t.elapsed()
            })
            .collect(),
    );

    f.set_len(1 << 20).expect("preallocate");
    f.sync_all().expect("fsync");
    let fsync_overwrite = dist(
        (0..300u64)
            .map(|i| {
                let t = Instant::now();
                f.seek(SeekFrom::Start(i * 128)).expect("seek");
                f.write_all(&payload).expect("write");
                f.sync_data().expect("fdatasync");
                t.elapsed()
            })
            .collect(),
    );
    drop(f);
    let _ = std::fs::remove_file(&path);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let echo = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let _ = s.set_nodelay(true);
        let mut buf = [0u8; 100];
        while s.read_exact(&mut buf).is_ok() {
            if s.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let _ = s.set_nodelay(true);
    let mut buf = [0u8; 100];
    let loopback_rtt = dist(
        (0..3000)
            .map(|_| {
                let t = Instant::now();
                s.write_all(&payload).expect("ping");
                s.read_exact(&mut buf).expect("pong");
                t.elapsed()
            })
            .collect(),
    );
    drop(s);
    let _ = echo.join();

    Floor {
        fsync_append,
        fsync_overwrite,
        loopback_rtt,
    }
}
