//! Property test of the frame decoder and the message codec: random and
//! mutated frames never panic, and a frame is only ever delivered exactly as
//! it was sent.
//!
//! `cargo test` runs a short pass; the full run is ignored by default:
//! `SMELT_FUZZ_FRAMES=1000000 cargo test --release -p smelt-runtime --test fuzz -- --ignored --nocapture`.

mod common;

use common::paxos::{Accept, Ballot, Decided, Msg, Prepare, Prepared, Proposal, Reply, Request};
use smelt_runtime::frame::{self, Kind, Response, HEADER_LEN, PAYLOAD_BYTES_MAX};
use smelt_runtime::rng::Rng;
use smelt_support::{Client, Id, Session};

const MAX: usize = 4096;

fn ballot(r: &mut Rng) -> Ballot {
    let bits = (r.below(64) + 1).min(63);
    (r.below(1 << bits), Id::from(r.below(8) as usize))
}

fn tag(r: &mut Rng) -> Client {
    Client {
        session: Session {
            epoch: r.next_u64() >> r.below(64),
            id: r.below(1 << 40),
        },
        seq: r.next_u64() >> r.below(64),
    }
}

/// The tag of the well-formed request and response frames.
fn tag7() -> Client {
    Client {
        session: Session { epoch: 1, id: 7 << 32 },
        seq: 3,
    }
}

fn proposal(r: &mut Rng) -> Proposal {
    Proposal {
        client: tag(r),
        value: r.next_u64() >> r.below(64),
    }
}

fn msg(r: &mut Rng) -> Msg {
    match r.below(8) {
        0 => Msg::Prepare(Prepare { ballot: ballot(r) }),
        1 => Msg::Prepared(Prepared {
            ballot: ballot(r),
            last_accepted: if r.below(2) == 0 {
                None
            } else {
                Some((ballot(r), proposal(r)))
            },
        }),
        2 => Msg::Accept(Accept {
            ballot: ballot(r),
            proposal: proposal(r),
        }),
        3 => Msg::Decided(Decided {
            ballot: ballot(r),
            proposal: proposal(r),
        }),
        4 => Msg::Request(tag(r), Request::Put { v: r.next_u64() }),
        5 => Msg::Reply(tag(r), Reply::GetOk(Some(r.next_u64()))),
        6 => Msg::Redirect(tag(r), Some(Id::from(r.below(5) as usize))),
        _ => Msg::Request(tag(r), Request::Get),
    }
}

/// One random valid frame and what it carries.
fn valid(r: &mut Rng) -> (Vec<u8>, Kind, Msg) {
    let m = msg(r);
    let (kind, bytes) = match r.below(3) {
        0 => {
            // A link's message: its number, then the message's encoding.
            let bytes = postcard::to_stdvec(&m).expect("encodes");
            (
                Kind::Peer,
                frame::encode(Kind::Peer, 9, r.below(5), &(r.next_u64(), &bytes[..]), MAX),
            )
        }
        1 => (
            Kind::Request,
            frame::encode(Kind::Request, 9, 0, &(tag7(), Request::Get), MAX),
        ),
        _ => (
            Kind::Response,
            frame::encode(
                Kind::Response,
                9,
                1,
                &Response::Reply(tag7(), Reply::GetOk(Some(4))),
                MAX,
            ),
        ),
    };
    (bytes.expect("encodes"), kind, m)
}

/// Decodes a delivered frame's payload as the type its kind carries; the
/// result must be the original for an original frame.
fn check_payload(kind: Kind, payload: &[u8], original: Option<&Msg>) {
    match kind {
        Kind::Peer => {
            let got = frame::payload::<(u64, Vec<u8>)>(payload).and_then(|(_, b)| frame::payload::<Msg>(&b));
            if let Some(m) = original {
                assert_eq!(got.as_ref(), Ok(m));
            }
        }
        Kind::Ack => {
            let _ = frame::payload::<u64>(payload);
        }
        Kind::Ping => {
            let _ = frame::payload::<()>(payload);
        }
        Kind::Request => {
            let got = frame::payload::<(Client, Request)>(payload);
            if original.is_some() {
                assert_eq!(got, Ok((tag7(), Request::Get)));
            }
        }
        Kind::Response => {
            let got = frame::payload::<Response<Reply>>(payload);
            if original.is_some() {
                assert_eq!(got, Ok(Response::Reply(tag7(), Reply::GetOk(Some(4)))));
            }
        }
        Kind::Hello => {
            let _ = frame::payload::<frame::Hello>(payload);
        }
        Kind::Status => {
            // A request is `()`; an answer a `NodeStatus`: neither may panic.
            let _ = frame::payload::<()>(payload);
            let _ = frame::payload::<smelt_runtime::admin::NodeStatus>(payload);
        }
    }
}

fn mutate(r: &mut Rng, b: &mut Vec<u8>) {
    for _ in 0..=r.below(3) {
        let len = b.len() as u64;
        match r.below(7) {
            0 if len > 0 => {
                let i = r.below(len) as usize;
                b[i] ^= 1 << r.below(8);
            }
            1 if len > 0 => {
                let i = r.below(len) as usize;
                b[i] = r.next_u64() as u8;
            }
            2 => {
                let i = r.below(len + 1) as usize;
                b.insert(i, r.next_u64() as u8);
            }
            3 if len > 0 => {
                b.remove(r.below(len) as usize);
            }
            4 => b.truncate(r.below(len + 1) as usize),
            5 => {
                // Corrupt the length field specifically.
                if len >= 8 {
                    let v = (r.next_u64() >> r.below(64)) as u32;
                    b[4..8].copy_from_slice(&v.to_le_bytes());
                }
            }
            _ => {
                let i = r.below(len.min(HEADER_LEN as u64) + 1) as usize;
                if i < b.len() {
                    b[i] = b[i].wrapping_add(1);
                }
            }
        }
    }
}

/// Runs `n` rounds; returns how many frames went through the decoder.
fn fuzz(seed: u64, n: u64) -> u64 {
    let mut r = Rng::new(seed);
    let mut decoded = 0u64;
    for _ in 0..n {
        // A valid frame round-trips.
        let (bytes, kind, m) = valid(&mut r);
        let (f, used) = frame::decode(&bytes, MAX).expect("valid").expect("complete");
        assert_eq!((used, f.kind), (bytes.len(), kind));
        check_payload(kind, &f.payload, Some(&m));

        // A mutated frame is either refused, incomplete, or — when the
        // mutations missed the bytes it consumes — exactly the original.
        let mut bad = bytes.clone();
        mutate(&mut r, &mut bad);
        if let Ok(Some((f, used))) = frame::decode(&bad, MAX) {
            assert_eq!(&bad[..used], &bytes[..], "a corrupt frame was delivered");
            check_payload(f.kind, &f.payload, Some(&m));
        }

        // Random bytes, half of them behind a plausible header.
        let len = r.below(64) as usize;
        let mut junk: Vec<u8> = (0..len).map(|_| r.next_u64() as u8).collect();
        if r.below(2) == 0 && junk.len() >= 4 {
            junk[0..2].copy_from_slice(&frame::MAGIC);
            junk[2] = frame::VERSION;
            junk[3] = 1 + r.below(4) as u8;
        }
        if let Ok(Some((f, _))) = frame::decode(&junk, MAX) {
            // Only with a matching crc32c, which random bytes almost never
            // have; the payload decoder must still not panic.
            check_payload(f.kind, &f.payload, None);
        }
        for k in [Kind::Peer, Kind::Request, Kind::Response, Kind::Hello] {
            check_payload(k, &junk, None);
        }

        // A stream of frames with one corrupted: everything before it is
        // delivered intact, nothing from it or after it is.
        let frames: Vec<(Vec<u8>, Kind, Msg)> = (0..3).map(|_| valid(&mut r)).collect();
        let hit = r.below(3) as usize;
        let mut stream = Vec::new();
        let mut starts = Vec::new();
        for (i, (b, _, _)) in frames.iter().enumerate() {
            starts.push(stream.len());
            let mut b = b.clone();
            if i == hit {
                let j = r.below(b.len() as u64) as usize;
                b[j] ^= 1 + r.below(255) as u8;
            }
            stream.extend_from_slice(&b);
        }
        let mut off = 0;
        let mut i = 0;
        while let Ok(Some((f, used))) = frame::decode(&stream[off..], MAX) {
            assert!(i < hit, "frame {i} delivered although frame {hit} was corrupt");
            assert_eq!(&stream[off..off + used], &frames[i].0[..]);
            check_payload(f.kind, &f.payload, Some(&frames[i].2));
            off += used;
            i += 1;
        }
        assert_eq!(off, starts[i.min(hit)]);
        decoded += 3 + 1 + 1 + (i as u64 + 1);
    }
    decoded
}

#[test]
fn frames_fuzz_quick() {
    let frames = fuzz(1, 20_000);
    assert!(frames >= 100_000);
}

#[test]
#[ignore = "long: the full fuzz run, reported by hand"]
fn frames_fuzz_full() {
    let target: u64 = std::env::var("SMELT_FUZZ_FRAMES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let seed = Rng::seed_from(0);
    let start = std::time::Instant::now();
    let mut frames = 0;
    let mut rounds = 0;
    while frames < target {
        frames += fuzz(seed.wrapping_add(rounds), 10_000);
        rounds += 1;
    }
    println!(
        "fuzz: {frames} frames decoded (seed {seed}, {} rounds of 10000) in {:.1}s, no panic, no corrupt frame delivered",
        rounds,
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn oversized_frames_are_refused_before_allocation() {
    let mut h = frame::encode(Kind::Peer, 9, 1, &msg(&mut Rng::new(3)), PAYLOAD_BYTES_MAX).expect("encode");
    h[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        frame::decode(&h[..HEADER_LEN], PAYLOAD_BYTES_MAX),
        Err(frame::FrameError::TooLarge { .. })
    ));
}
