//! Unit tests of the callback parser: nginx's own bodies parse; every client argument
//! that repeats an nginx field is refused; nothing a client appends changes a field.

use proptest::prelude::*;

use super::*;

const KEY: &str = "sk_live_0123456789abcdefghijABCDEFGHIJ-_xyzXYZ0123";
const RELAY: &str = "rtmp://127.0.0.1:1935/stream";
const MARK: &str = "hooks-secret-0123456789";

const RECORD: &str = "rtmp://127.0.0.1:1935/record";

fn insiders() -> Insiders {
    Insiders::new(&[RELAY, RECORD], Some(MARK.to_owned()))
}

fn esc(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// The body nginx-rtmp writes for `kind` (ngx_rtmp_netcall_http_format_session, then
/// ngx_rtmp_notify_*_create), for a session on `app` from `addr` named `name`, with
/// the client's raw `args` appended as nginx does.
fn nginx_body(
    kind: Kind,
    app: &str,
    addr: &str,
    flashver: &str,
    name: &str,
    args: &str,
) -> Vec<u8> {
    let mut body = format!(
        "app={}&flashver={}&swfurl=&tcurl={}&pageurl=&addr={}&clientid=42",
        esc(app),
        esc(flashver),
        esc(&format!("rtmp://127.0.0.1:1935/{app}")),
        esc(addr)
    );
    let name = esc(name);
    body.push_str(&match kind {
        Kind::Publish => format!("&call=publish&name={name}&type=live"),
        Kind::Play => format!("&call=play&name={name}&start=4294965296&duration=0&reset=0"),
        Kind::Update => format!("&call=update_publish&time=3&timestamp=3012&name={name}"),
        Kind::PublishDone => format!("&call=publish_done&name={name}"),
        Kind::PlayDone => format!("&call=play_done&name={name}"),
        Kind::Done => format!("&call=done&name={name}"),
        Kind::RecordDone => format!(
            "&call=record_done&recorder=&name={name}&path={}",
            esc(&format!("/rec/{}-1700000000.flv", name))
        ),
    });
    if !args.is_empty() {
        body.push('&');
        body.push_str(args);
    }
    body.into_bytes()
}

fn ffmpeg(kind: Kind, name: &str, args: &str) -> Vec<u8> {
    nginx_body(
        kind,
        "live",
        "192.0.2.10",
        "FMLE/3.0 (compatible; Lavf59.27.100)",
        name,
        args,
    )
}

fn parse(kind: Kind, body: &[u8]) -> Result<Callback, HookError> {
    Callback::parse(kind, body, &insiders())
}

#[test]
fn nginx_bodies_parse_into_their_kind() {
    let want = |kind, label| {
        let cb = parse(kind, &ffmpeg(kind, KEY, "")).unwrap();
        assert_eq!(cb.label(), label, "{kind:?}");
        cb
    };
    let cb = want(Kind::Publish, "publish");
    assert!(
        matches!(&cb, Callback::Publish { name, origin } if name == KEY
        && origin.app == "live" && origin.addr == "192.0.2.10" && origin.client_id == "42")
    );
    assert!(
        matches!(want(Kind::PublishDone, "publish_done"), Callback::PublishDone { key, .. } if key.expose() == KEY)
    );
    assert!(
        matches!(want(Kind::Update, "update_publish"), Callback::UpdatePublish { key, .. } if key.expose() == KEY)
    );
    want(Kind::PlayDone, "play_done");
    want(Kind::Done, "done");
    let id = "0193a0b2-0000-7000-8000-000000000001";
    let cb = parse(
        Kind::RecordDone,
        &nginx_body(Kind::RecordDone, "record", "127.0.0.1", "", id, ""),
    )
    .unwrap();
    assert!(
        matches!(&cb, Callback::RecordDone { name, path, origin } if name == id
        && path == &format!("/rec/{id}-1700000000.flv") && origin.app == "record")
    );
    let id = "0193a0b2-0000-7000-8000-000000000001";
    let cb = parse(
        Kind::Play,
        &nginx_body(Kind::Play, "stream", "192.0.2.10", "LNX 9,0,124,2", id, ""),
    )
    .unwrap();
    assert!(matches!(cb, Callback::Play { ref name, player: Player::Viewer, .. } if name == id));
    let update_play = String::from_utf8(ffmpeg(Kind::Update, "x", ""))
        .unwrap()
        .replace("update_publish", "update_play");
    assert_eq!(
        parse(Kind::Update, update_play.as_bytes()).unwrap().label(),
        "update_play"
    );
}

#[test]
fn keys_never_print() {
    let cb = parse(Kind::Update, &ffmpeg(Kind::Update, KEY, "")).unwrap();
    assert!(!format!("{cb:?}").contains(KEY));
}

/// Every way a client argument can name a field: plain, percent-encoded (one letter
/// or all), upper case, with `+`-free padding, repeated, empty.
fn spellings(field: &str) -> Vec<String> {
    let first = field.as_bytes()[0];
    let all: String = field.bytes().map(|b| format!("%{b:02X}")).collect();
    vec![
        format!("{field}=x"),
        format!("{field}="),
        format!("%{first:02x}{}=x", &field[1..]),
        format!("{all}=x"),
        format!("{}=x", field.to_ascii_uppercase()),
        format!("{field}=a&{field}=b"),
        format!("tok=1&{field}={}", "A".repeat(200)),
    ]
}

#[test]
fn a_client_argument_repeating_any_nginx_field_is_refused_for_every_kind() {
    for kind in Kind::ALL {
        for field in NGINX_FIELDS {
            for args in spellings(field) {
                let body = ffmpeg(kind, KEY, &args);
                match parse(kind, &body) {
                    Err(HookError::Forged(named)) => assert_eq!(named, field, "{kind:?} {args}"),
                    other => panic!("{kind:?} with `{args}` was not refused: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn the_issue_example_is_refused() {
    // ffmpeg … rtmp://127.0.0.1:1935/live/x?call=done
    for kind in Kind::ALL {
        let err = parse(kind, &ffmpeg(kind, "x", "call=done")).unwrap_err();
        assert!(
            matches!(err, HookError::Forged("call")),
            "{kind:?}: {err:?}"
        );
    }
}

#[test]
fn a_call_that_disagrees_with_the_url_is_refused() {
    for (kind, body_of) in [
        (Kind::Publish, Kind::Done),
        (Kind::Update, Kind::Publish),
        (Kind::Play, Kind::Publish),
        (Kind::PublishDone, Kind::PlayDone),
        (Kind::Done, Kind::PublishDone),
        (Kind::RecordDone, Kind::Done),
        (Kind::Done, Kind::RecordDone),
    ] {
        let err = parse(kind, &ffmpeg(body_of, KEY, "")).unwrap_err();
        assert!(matches!(err, HookError::Forged(_)), "{kind:?}: {err:?}");
    }
}

#[test]
fn other_client_arguments_change_nothing() {
    let plain = parse(Kind::Publish, &ffmpeg(Kind::Publish, KEY, "")).unwrap();
    for args in [
        "tok=abc",
        "a=1&b=2",
        "nova_internal=guess",
        "names=x",
        "%00call=x",
        "call%20=x",
        "=",
        "&&&",
    ] {
        assert_eq!(
            parse(Kind::Publish, &ffmpeg(Kind::Publish, KEY, args)).unwrap(),
            plain,
            "{args}"
        );
    }
}

#[test]
fn missing_fields_are_named() {
    let err = parse(Kind::Publish, b"app=live&addr=1.2.3.4&clientid=1").unwrap_err();
    assert!(matches!(err, HookError::Malformed("call")), "{err:?}");
    let err = parse(
        Kind::Publish,
        b"app=live&addr=1.2.3.4&clientid=1&call=publish",
    )
    .unwrap_err();
    assert!(matches!(err, HookError::Malformed("name")), "{err:?}");
    let err = parse(Kind::Done, b"app=live&clientid=1&call=done").unwrap_err();
    assert!(matches!(err, HookError::Malformed("addr")), "{err:?}");
}

#[test]
fn keys_with_anything_but_url_safe_characters_are_refused() {
    for bad in [
        "",
        "sk?x",
        "sk&x",
        "sk%x",
        "sk x",
        "sk\nx",
        "sk\u{0}x",
        "sk/x",
        "sk.x",
        "ключ",
        &"a".repeat(257),
    ] {
        assert!(StreamKey::parse(bad).is_err(), "{bad:?}");
        // and the same through nginx's escaping: refused, never passed on
        match parse(Kind::Update, &ffmpeg(Kind::Update, bad, "")) {
            Err(HookError::Refused(_) | HookError::Malformed("name")) => {}
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(StreamKey::parse(KEY).is_ok());
}

#[test]
fn only_nginx_relays_and_the_marked_transcoder_are_internal() {
    let play = |addr: &str, flashver: &str, args: &str| {
        let body = nginx_body(Kind::Play, "live", addr, flashver, "a1b2", args);
        match parse(Kind::Play, &body).unwrap() {
            Callback::Play { player, .. } => player,
            other => panic!("{other:?}"),
        }
    };
    let relay_addr = "127.0.0.1:1935/stream/0193a0b2-0000-7000-8000-000000000001";
    assert_eq!(play(relay_addr, "ngx-local-relay", ""), Player::Internal);
    let record_addr = "127.0.0.1:1935/record/0193a0b2-0000-7000-8000-000000000001";
    assert_eq!(play(record_addr, "ngx-local-relay", ""), Player::Internal);
    assert_eq!(
        play("192.0.2.1", "ngx-local-relay", ""),
        Player::Viewer,
        "a client claiming the relay's flashver"
    );
    assert_eq!(play("127.0.0.1", "ngx-local-relay", ""), Player::Viewer);
    assert_eq!(
        play("127.0.0.1:1935/other/x", "ngx-local-relay", ""),
        Player::Viewer
    );
    assert_eq!(play(relay_addr, "LNX 9,0,124,2", ""), Player::Viewer);
    assert_eq!(
        play("127.0.0.1", "Lavf", &format!("nova_internal={MARK}")),
        Player::Internal
    );
    assert_eq!(
        play("127.0.0.1", "Lavf", "nova_internal=guess"),
        Player::Viewer
    );
    assert_eq!(
        play("127.0.0.1", "Lavf", "internal=transcoder"),
        Player::Viewer
    );
    let unmarked = Insiders::new(&[RELAY], None);
    let body = nginx_body(
        Kind::Play,
        "stream",
        "127.0.0.1",
        "Lavf",
        "a1b2",
        "nova_internal=",
    );
    assert!(matches!(
        Callback::parse(Kind::Play, &body, &unmarked).unwrap(),
        Callback::Play {
            player: Player::Viewer,
            ..
        }
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Whatever a client appends, the parse either refuses or yields exactly the
    /// fields nginx wrote.
    #[test]
    fn client_arguments_never_change_a_parsed_field(args in proptest::collection::vec(any::<u8>(), 0..300)) {
        let args = String::from_utf8_lossy(&args).into_owned();
        for kind in Kind::ALL {
            let plain = parse(kind, &ffmpeg(kind, KEY, "")).unwrap();
            match parse(kind, &ffmpeg(kind, KEY, &args)) {
                Ok(cb) => prop_assert_eq!(cb, plain),
                Err(HookError::Forged(_)) => {}
                Err(other) => prop_assert!(false, "{:?}: unexpected {:?}", kind, other),
            }
        }
    }

    /// Arbitrary bytes never panic the parser.
    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600)) {
        for kind in Kind::ALL {
            let _ = parse(kind, &body);
        }
    }

    /// Arguments built from nginx's field names, in any spelling, never pass.
    #[test]
    fn field_name_arguments_are_refused(field in proptest::sample::select(NGINX_FIELDS.to_vec()), upper in proptest::collection::vec(any::<bool>(), 18), value in "[a-z0-9=%&]{0,20}") {
        let spelled: String = field.chars().zip(upper.iter().cycle()).map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c }).collect();
        for kind in Kind::ALL {
            let body = ffmpeg(kind, KEY, &format!("{spelled}={value}"));
            prop_assert!(matches!(parse(kind, &body), Err(HookError::Forged(_))), "{:?} {}", kind, spelled);
        }
    }
}
