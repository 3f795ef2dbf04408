//! The client state machine driven by scripted inputs.

use super::*;
use crate::engine::MS;
use crate::scenario::Distribution;

/// A population and its effects so far.
struct H {
    pop: Population,
    names: Rc<KeyNames>,
    out: Vec<ClientEffect>,
}

/// Three masters (processes 0, 1, 2) with the standard slot ranges;
/// process 3 replicates 0.
fn slots() -> Answer {
    Answer::Slots(
        vec![
            SlotRange {
                start: 0,
                end: 5460,
                nodes: vec![Some(0), Some(3)],
            },
            SlotRange {
                start: 5461,
                end: 10922,
                nodes: vec![Some(1)],
            },
            SlotRange {
                start: 10923,
                end: 16383,
                nodes: vec![Some(2)],
            },
        ]
        .into(),
    )
}

/// The process serving `slot` in [`slots`].
fn owner(slot: u16) -> u32 {
    match slot {
        0..=5460 => 0,
        5461..=10922 => 1,
        _ => 2,
    }
}

impl H {
    fn new(w: Workload) -> H {
        let names = Rc::new(KeyNames::new(w.keys).unwrap());
        let mut pop = Population::new(0, &w, 0, 1, 4, None, names.clone()).unwrap();
        let mut out = Vec::new();
        pop.start(&mut out);
        H { pop, names, out }
    }

    fn take(&mut self) -> Vec<ClientEffect> {
        std::mem::take(&mut self.out)
    }

    fn input(&mut self, now: SimTime, input: ClientInput) -> Vec<ClientEffect> {
        self.pop.handle(now, input, &mut self.out);
        self.take()
    }

    /// Fire client `c`'s latest timer in `effects`.
    fn fire(&mut self, effects: &[ClientEffect], c: u32) -> (SimTime, Vec<ClientEffect>) {
        let (at, token) = effects
            .iter()
            .rev()
            .find_map(|e| match e {
                ClientEffect::Timer {
                    client, at, token, ..
                } if *client == c => Some((*at, *token)),
                _ => None,
            })
            .expect("a timer");
        (at, self.input(at, ClientInput::Timer { client: c, token }))
    }

    fn answer(&mut self, now: SimTime, c: u32, req: &Req, answer: Answer) -> Vec<ClientEffect> {
        self.input(
            now,
            ClientInput::Answer {
                client: c,
                try_id: req.try_id,
                answer,
            },
        )
    }
}

fn sends(effects: &[ClientEffect]) -> Vec<(u32, u32, Req)> {
    effects
        .iter()
        .filter_map(|e| match e {
            ClientEffect::Send { client, node, req } => Some((*client, *node, *req)),
            _ => None,
        })
        .collect()
}

fn records(effects: &[ClientEffect]) -> Vec<OpRecord> {
    effects
        .iter()
        .filter_map(|e| match e {
            ClientEffect::Record(r) => Some(*r),
            _ => None,
        })
        .collect()
}

fn one_send(effects: &[ClientEffect]) -> (u32, Req) {
    let s = sends(effects);
    assert_eq!(s.len(), 1, "{effects:?}");
    (s[0].1, s[0].2)
}

/// A population started and given its slot map: client 0 has sent its
/// first request, whose (node, req) is returned.
fn ready(w: Workload) -> (H, SimTime, u32, Req) {
    let mut h = H::new(w);
    let first = h.take();
    let (t, e) = h.fire(&first, 0);
    let (node, req) = one_send(&e);
    assert_eq!((node, req.cmd), (0, Cmd::ClusterSlots));
    let e = h.answer(t + MS, 0, &req, slots());
    let (node, req) = one_send(&e);
    assert_eq!(records(&e)[0].cmd, Cmd::ClusterSlots);
    (h, t + MS, node, req)
}

#[test]
fn clients_are_paced_and_catch_up_when_behind() {
    let mut h = H::new(Workload {
        clients: 4,
        rate: 8.0,
        start: 10 * MS,
        ..Workload::default()
    });
    // Each client every 500 ms, the four spread over the interval.
    let first = h.take();
    let at: Vec<SimTime> = first
        .iter()
        .map(|e| match e {
            ClientEffect::Timer { at, .. } => *at,
            _ => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(at, [10 * MS, 135 * MS, 260 * MS, 385 * MS]);
    // Client 0 loads the map; client 1's request waits for it.
    let (t0, e) = h.fire(&first[0..1], 0);
    let (_, refresh) = one_send(&e);
    let (_, e) = h.fire(&first[1..2], 1);
    assert!(sends(&e).is_empty());
    let e = h.answer(t0 + MS, 0, &refresh, slots());
    let s = sends(&e);
    assert_eq!(
        s.iter().map(|x| x.0).collect::<Vec<_>>(),
        [1, 0],
        "the waiting client goes first"
    );
    // A quick reply: the next request at the schedule's time.
    let (_, _, req0) = s[1];
    let e = h.answer(20 * MS, 0, &req0, Answer::Ok);
    assert!(matches!(e.last(), Some(ClientEffect::Timer { at, .. }) if *at == 510 * MS));
    // A reply after the next request was due: the next one at once.
    let (_, _, req1) = s[0];
    let e = h.answer(900 * MS, 1, &req1, Answer::Nil);
    assert_eq!(sends(&e).len(), 1);
    let r = records(&e)[0];
    assert_eq!(
        (r.sent, r.done, r.outcome),
        (t0 + MS, 900 * MS, Outcome::Nil)
    );
}

#[test]
fn requests_go_to_the_slot_owner_with_unique_values() {
    let (mut h, mut t, mut node, mut req) = ready(Workload {
        clients: 1,
        rate: 1_000_000.0,
        read_ratio: 0.5,
        value_size_bytes: 20,
        ..Workload::default()
    });
    let (mut gets, mut sets) = (0, 0);
    let mut values = std::collections::BTreeSet::new();
    let mut b = Vec::new();
    for _ in 0..400 {
        let slot = h.names.slot(req.key, &mut b);
        assert_eq!(node, owner(slot), "{req:?}");
        assert!(req.key < 10_000);
        match req.cmd {
            Cmd::Get => gets += 1,
            Cmd::Set => {
                sets += 1;
                assert!(values.insert(req.value), "unique");
            }
            c => panic!("{c:?}"),
        }
        t += MS;
        let e = h.answer(
            t,
            0,
            &req,
            if req.cmd == Cmd::Get {
                Answer::Nil
            } else {
                Answer::Ok
            },
        );
        let r = records(&e)[0];
        assert_eq!((r.key, r.node as u32, r.cmd), (req.key, node, req.cmd));
        (node, req) = one_send(&e);
    }
    assert!(
        (160..240).contains(&gets) && gets + sets == 400,
        "{gets} {sets}"
    );
    let mut argv = Argv::default();
    let set = Req {
        cmd: Cmd::Set,
        asking: false,
        ttl: false,
        key: 7,
        try_id: 0,
        value: keys::write_id(0, 3),
    };
    h.pop.command(&set, &mut argv);
    argv.with(|a| assert_eq!(a, [&b"SET"[..], b"key:7", b"0.3.xxxxxxxxxxxxxxxx"]));
}

#[test]
fn moved_patches_the_map_and_every_fifth_reloads_it() {
    let (mut h, t, node, req) = ready(Workload {
        clients: 1,
        rate: 1_000_000.0,
        read_ratio: 1.0,
        keys: 1,
        ..Workload::default()
    });
    // key:0 is in slot 2592 (process 0's): MOVED to process 1.
    assert_eq!(node, 0);
    let e = h.answer(
        t,
        0,
        &req,
        Answer::Moved {
            slot: 2592,
            node: Some(1),
        },
    );
    let (node, req) = one_send(&e);
    assert_eq!(node, 1);
    assert!(records(&e).is_empty(), "one try across redirections");
    let e = h.answer(t, 0, &req, Answer::Value(NO_VALUE));
    let r = records(&e)[0];
    assert_eq!((r.node, r.redirects, r.outcome), (1, 1, Outcome::Value));
    // The map was patched: the next request goes to process 1.
    let (node, mut req) = one_send(&e);
    assert_eq!(node, 1);
    // MOVED 2..4 patch; the 5th reloads the map, then the request goes
    // where the new map says.
    for i in 2..=5 {
        let e = h.answer(
            t,
            0,
            &req,
            Answer::Moved {
                slot: 2592,
                node: Some(2),
            },
        );
        let (node, next) = one_send(&e);
        if i < 5 {
            assert_eq!((node, next.cmd), (2, Cmd::Get));
            let e = h.answer(t, 0, &next, Answer::Nil);
            req = one_send(&e).1;
        } else {
            assert_eq!(next.cmd, Cmd::ClusterSlots);
            let e = h.answer(t, 0, &next, slots());
            let (node, again) = one_send(&e);
            assert_eq!((node, again.cmd), (0, Cmd::Get));
            let e = h.answer(t, 0, &again, Answer::Nil);
            assert_eq!(records(&e)[0].redirects, 1);
        }
    }
}

#[test]
fn ask_is_followed_with_asking_and_leaves_the_map() {
    let (mut h, t, node, req) = ready(Workload {
        clients: 1,
        rate: 1_000_000.0,
        read_ratio: 1.0,
        keys: 1,
        ..Workload::default()
    });
    assert_eq!(node, 0);
    let e = h.answer(
        t,
        0,
        &req,
        Answer::Ask {
            slot: 2592,
            node: Some(2),
        },
    );
    let (node, asked) = one_send(&e);
    assert_eq!((node, asked.asking), (2, true));
    let e = h.answer(t, 0, &asked, Answer::Nil);
    let (node, next) = one_send(&e);
    assert_eq!((node, next.asking), (0, false));
}

#[test]
fn too_many_redirections_fail_the_try() {
    let (mut h, t, _, mut req) = ready(Workload {
        clients: 1,
        rate: 1_000_000.0,
        read_ratio: 1.0,
        keys: 1,
        ..Workload::default()
    });
    let mut tries = 0;
    loop {
        // Always ASK back and forth: never reloads the map.
        let e = h.answer(
            t,
            0,
            &req,
            Answer::Ask {
                slot: 2592,
                node: Some(tries % 2),
            },
        );
        tries += 1;
        if let Some(r) = records(&e).first() {
            assert_eq!((r.outcome, r.redirects), (Outcome::Ask, 15));
            assert_eq!(tries, u32::from(MAX_SENDS));
            break;
        }
        req = one_send(&e).1;
    }
}

#[test]
fn timeouts_drop_the_connection_and_retry_after_a_reload() {
    let (mut h, t, node, req) = ready(Workload {
        clients: 1,
        rate: 1.0,
        read_ratio: 0.0,
        timeout: 500 * MS,
        retry_after: 100 * MS,
        ..Workload::default()
    });
    // No reply: the timer fires at the timeout.
    let (at, e) = h.fire(
        &[ClientEffect::Timer {
            kind: TimerKind::Timeout,
            client: 0,
            at: t + 500 * MS,
            token: h.pop.clients[0].timer,
        }],
        0,
    );
    assert!(e.contains(&ClientEffect::Close { client: 0, node }));
    let r = records(&e)[0];
    assert_eq!(
        (r.outcome, r.sent, r.done, r.value),
        (Outcome::Timeout, t, at, req.value)
    );
    // After retry_after: CLUSTER SLOTS first, then the same request.
    let (at2, e) = h.fire(&e, 0);
    assert_eq!(at2, at + 100 * MS);
    let (_, refresh) = one_send(&e);
    assert_eq!(refresh.cmd, Cmd::ClusterSlots);
    let e = h.answer(at2 + MS, 0, &refresh, slots());
    let (again_node, again) = one_send(&e);
    assert_eq!(
        (again_node, again.key, again.value),
        (node, req.key, req.value)
    );
    assert_ne!(again.try_id, req.try_id);
    // The late reply of the first try is ignored.
    assert!(h.answer(at2 + 2 * MS, 0, &req, Answer::Ok).is_empty());
    let e = h.answer(at2 + 2 * MS, 0, &again, Answer::Ok);
    assert_eq!(records(&e)[0].outcome, Outcome::Ok);
}

#[test]
fn clusterdown_and_connection_errors_retry_other_errors_give_up() {
    let (mut h, t, _, req) = ready(Workload {
        clients: 2,
        rate: 2.0,
        read_ratio: 0.0,
        ..Workload::default()
    });
    let mut errors = ErrorTexts::default();
    let down = parse_reply(
        &Reply::Error("CLUSTERDOWN The cluster is down".into()),
        &AddrBook::default(),
        &mut errors,
    );
    let e = h.answer(t, 0, &req, down);
    let r = records(&e)[0];
    assert_eq!(
        (r.outcome, errors.text(r.error)),
        (Outcome::Error, Some("CLUSTERDOWN The cluster is down"))
    );
    let (_, e) = h.fire(&e, 0);
    let (_, refresh) = one_send(&e);
    assert_eq!(refresh.cmd, Cmd::ClusterSlots);
    let e = h.answer(t + 200 * MS, 0, &refresh, slots());
    let (_, again) = one_send(&e);
    assert_eq!(again.value, req.value);
    // A reset connection: retried too.
    let e = h.input(
        t + 300 * MS,
        ClientInput::ConnError {
            client: 0,
            try_id: again.try_id,
            refused: false,
        },
    );
    assert_eq!(records(&e)[0].outcome, Outcome::Reset);
    assert!(sends(&e).is_empty());
    // The map was reloaded after that failure? No: it is reloaded again.
    let (_, e) = h.fire(&e, 0);
    let (_, refresh) = one_send(&e);
    assert_eq!(refresh.cmd, Cmd::ClusterSlots);
    let e = h.answer(t + 500 * MS, 0, &refresh, slots());
    let (_, again) = one_send(&e);
    // Another error: the request is over, the next one is scheduled.
    let other = parse_reply(
        &Reply::Error("ERR value is not an integer or out of range".into()),
        &AddrBook::default(),
        &mut errors,
    );
    let e = h.answer(t + 600 * MS, 0, &again, other);
    assert_eq!(records(&e)[0].outcome, Outcome::Error);
    assert!(sends(&e).is_empty());
    let (at, e) = h.fire(&e, 0);
    assert_eq!(at, 1000 * MS);
    assert_ne!(one_send(&e).1.value, req.value);
}

#[test]
fn a_miss_is_followed_by_a_set_of_the_key() {
    let (mut h, t, node, req) = ready(Workload {
        clients: 1,
        rate: 1.0,
        read_ratio: 1.0,
        on_miss: crate::scenario::OnMiss::Set,
        ..Workload::default()
    });
    assert_eq!(req.cmd, Cmd::Get);
    let e = h.answer(t, 0, &req, Answer::Nil);
    let (n, set) = one_send(&e);
    assert_eq!((n, set.cmd, set.key), (node, Cmd::Set, req.key));
    let e = h.answer(t, 0, &set, Answer::Ok);
    // Then the schedule goes on.
    assert!(matches!(e.last(), Some(ClientEffect::Timer { at, .. }) if *at == SEC));
}

#[test]
fn replicas_serve_reads_with_read_from_replicas() {
    let (mut h, t, node, mut req) = ready(Workload {
        clients: 1,
        rate: 1_000_000.0,
        read_ratio: 1.0,
        read_from_replicas: true,
        slots: Some(vec![(0, 5460)]),
        ..Workload::default()
    });
    assert_eq!(node, 3, "the replica of process 0");
    for _ in 0..20 {
        let e = h.answer(t, 0, &req, Answer::Nil);
        let (node, next) = one_send(&e);
        assert_eq!(node, 3);
        req = next;
    }
}

#[test]
fn ttl_share_picks_the_keys_written_with_a_ttl() {
    let (mut h, t, _, mut req) = ready(Workload {
        clients: 1,
        rate: 1_000_000.0,
        read_ratio: 0.0,
        ttl: Some(2 * SEC),
        ttl_share: 0.25,
        ..Workload::default()
    });
    let mut argv = Argv::default();
    for _ in 0..200 {
        assert_eq!(req.ttl, req.key % 4 == 0, "{req:?}");
        h.pop.command(&req, &mut argv);
        argv.with(|a| assert_eq!(a.len(), if req.ttl { 5 } else { 3 }));
        if req.ttl {
            argv.with(|a| assert_eq!(&a[3..], [&b"PX"[..], b"2000"]));
        }
        let e = h.answer(t, 0, &req, Answer::Ok);
        req = one_send(&e).1;
    }
}

#[test]
fn request_len_is_the_size_of_the_written_request() {
    for value_size in [1, 20, 100] {
        let (mut h, t, _, mut req) = ready(Workload {
            clients: 1,
            rate: 1_000_000.0,
            read_ratio: 0.5,
            value_size_bytes: value_size,
            ttl: Some(1234 * SEC),
            ttl_share: 0.5,
            ..Workload::default()
        });
        let mut argv = Argv::default();
        let written = |h: &H, r: &Req, argv: &mut Argv| {
            h.pop.command(r, argv);
            argv.with(crate::node::serve::request_len)
        };
        for i in 0..50u64 {
            for cmd in [
                Cmd::Get,
                Cmd::Set,
                Cmd::Incr,
                Cmd::Append,
                Cmd::ClusterSlots,
            ] {
                let r = Req {
                    cmd,
                    ttl: cmd == Cmd::Set && req.ttl,
                    key: (req.key + i as u32 * 37) % 100,
                    value: keys::write_id(i as u32 * 100_003, (i * i * 1_000_003) as u32),
                    ..req
                };
                assert_eq!(h.pop.request_len(&r), written(&h, &r, &mut argv), "{r:?}");
            }
            let e = h.answer(t, 0, &req, Answer::Ok);
            req = one_send(&e).1;
        }
    }
}

#[test]
fn nothing_new_after_stop_and_traces_end() {
    let (mut h, t, _, req) = ready(Workload {
        clients: 1,
        rate: 10.0,
        stop: Some(150 * MS),
        distribution: Distribution::Zipf(0.9),
        ..Workload::default()
    });
    let e = h.answer(t, 0, &req, Answer::Ok);
    let (at, e) = h.fire(&e, 0);
    assert_eq!(at, 100 * MS);
    let (_, req) = one_send(&e);
    let e = h.answer(200 * MS, 0, &req, Answer::Ok);
    assert_eq!(records(&e).len(), 1, "the request in flight completes");
    assert_eq!(e.len(), 1, "and nothing follows: {e:?}");

    let mut names = KeyNames::new(10).unwrap();
    let trace = vec![
        keys::TraceOp {
            set: true,
            key: names.intern(b"key:3").unwrap(),
        },
        keys::TraceOp {
            set: false,
            key: names.intern(b"other").unwrap(),
        },
    ];
    let mut pop = Population::new(
        0,
        &Workload::default(),
        0,
        1,
        3,
        Some(trace),
        Rc::new(names),
    )
    .unwrap();
    let mut out = Vec::new();
    pop.start(&mut out);
    let token = |out: &[ClientEffect]| match out.last() {
        Some(ClientEffect::Timer { token, .. }) => *token,
        e => panic!("{e:?}"),
    };
    let tk = token(&out);
    pop.handle(
        0,
        ClientInput::Timer {
            client: 0,
            token: tk,
        },
        &mut out,
    );
    let (_, refresh) = one_send(&out);
    out.clear();
    pop.handle(
        0,
        ClientInput::Answer {
            client: 0,
            try_id: refresh.try_id,
            answer: slots(),
        },
        &mut out,
    );
    let (_, first) = one_send(&out);
    assert_eq!((first.cmd, first.key), (Cmd::Set, 3));
    out.clear();
    pop.handle(
        0,
        ClientInput::Answer {
            client: 0,
            try_id: first.try_id,
            answer: Answer::Ok,
        },
        &mut out,
    );
    let tk = token(&out);
    out.clear();
    pop.handle(
        SEC,
        ClientInput::Timer {
            client: 0,
            token: tk,
        },
        &mut out,
    );
    let (_, second) = one_send(&out);
    assert_eq!((second.cmd, second.key), (Cmd::Get, 10));
    out.clear();
    pop.handle(
        SEC,
        ClientInput::Answer {
            client: 0,
            try_id: second.try_id,
            answer: Answer::Nil,
        },
        &mut out,
    );
    assert_eq!(out.len(), 1, "the trace is over: {out:?}");
}

#[test]
fn replies_are_parsed_as_a_library_does() {
    let book = AddrBook::new(vec![
        Addr::new([10, 0, 0, 1], 6379),
        Addr::new([10, 0, 0, 2], 6379),
    ]);
    let mut errors = ErrorTexts::default();
    let mut p = |r: Reply| parse_reply(&r, &book, &mut errors);
    assert_eq!(
        p(Reply::Error("MOVED 5061 10.0.0.2:6379".into())),
        Answer::Moved {
            slot: 5061,
            node: Some(1)
        }
    );
    assert_eq!(
        p(Reply::Error("ASK 1 10.0.0.9:6379".into())),
        Answer::Ask {
            slot: 1,
            node: None
        }
    );
    assert_eq!(
        p(Reply::Error("MOVED 1 ?:6379".into())),
        Answer::Moved {
            slot: 1,
            node: None
        }
    );
    assert_eq!(
        p(Reply::Error(
            "TRYAGAIN Multiple keys request during rehashing of slot".into()
        )),
        Answer::Error {
            class: ErrorClass::TryAgain,
            text: 0
        }
    );
    assert_eq!(
        p(Reply::Error("CLUSTERDOWN Hash slot not served".into())),
        Answer::Error {
            class: ErrorClass::ClusterDown,
            text: 1
        }
    );
    assert_eq!(
        p(Reply::Bulk(b"3.4.xx".to_vec())),
        Answer::Value(keys::write_id(3, 4))
    );
    let node = |ip: &str| {
        Reply::Array(vec![
            Reply::Bulk(ip.into()),
            Reply::Int(6379),
            Reply::Bulk(b"id".to_vec()),
            Reply::Array(vec![]),
        ])
    };
    let slots = Reply::Array(vec![Reply::Array(vec![
        Reply::Int(0),
        Reply::Int(9),
        node("10.0.0.2"),
        node("10.0.0.1"),
        node("10.0.0.7"),
    ])]);
    assert_eq!(
        p(slots),
        Answer::Slots(
            vec![SlotRange {
                start: 0,
                end: 9,
                nodes: vec![Some(1), Some(0), None]
            }]
            .into()
        )
    );
}

#[test]
fn a_request_is_tried_at_most_four_times() {
    let (mut h, mut t, _, req) = ready(Workload {
        clients: 1,
        rate: 1.0,
        read_ratio: 0.0,
        ..Workload::default()
    });
    let mut cur = req;
    for i in 0..=MAX_RETRIES {
        let e = h.input(
            t,
            ClientInput::ConnError {
                client: 0,
                try_id: cur.try_id,
                refused: true,
            },
        );
        assert_eq!(records(&e)[0].outcome, Outcome::Refused);
        let (at, e) = h.fire(&e, 0);
        if i == MAX_RETRIES {
            // Given up: the next request of the schedule, with a new value,
            // after reloading the map.
            assert_eq!(at, SEC);
        } else {
            assert_eq!(at, t + 100 * MS, "retry_after");
        }
        t = at;
        let (_, refresh) = one_send(&e);
        assert_eq!(refresh.cmd, Cmd::ClusterSlots);
        let e = h.answer(t, 0, &refresh, slots());
        cur = one_send(&e).1;
        assert_eq!(cur.value == req.value, i < MAX_RETRIES, "try {i}");
    }
}

#[test]
fn a_node_that_lists_no_slot_sends_the_next_reload_elsewhere() {
    let mut h = H::new(Workload {
        clients: 1,
        rate: 1.0,
        ..Workload::default()
    });
    let first = h.take();
    let (t, e) = h.fire(&first, 0);
    let (node, refresh) = one_send(&e);
    assert_eq!(node, 0);
    // An empty map: the request goes to the next node, which answers as a
    // node of a cluster not created yet would.
    let e = h.answer(t, 0, &refresh, Answer::Slots(Box::new([])));
    let (node, req) = one_send(&e);
    assert_eq!(node, 1);
    let mut errors = ErrorTexts::default();
    let down = parse_reply(
        &Reply::Error("CLUSTERDOWN Hash slot not served".into()),
        &AddrBook::default(),
        &mut errors,
    );
    let e = h.answer(t, 0, &req, down);
    let (_, e) = h.fire(&e, 0);
    let (node, refresh) = one_send(&e);
    assert_eq!((node, refresh.cmd), (1, Cmd::ClusterSlots));
}
