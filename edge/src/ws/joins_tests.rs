//! Tests of join coalescing over a control plane in the test process.

use futures::future::join_all;
use nova_proto::v1::ViewerKind;

use super::*;
use crate::fake_control_plane::{FakeControlPlane, PEAK, VIEWERS};

fn request(stream: &str, viewer: usize) -> JoinSessionRequest {
    JoinSessionRequest {
        name: stream.to_owned(),
        viewer_id: format!("viewer-{viewer}"),
        kind: ViewerKind::Web.into(),
        node: "edge-test".to_owned(),
    }
}

fn name(id: uuid::Uuid) -> String {
    format!("{}{id}", nova_proto::STREAM_NAME_PREFIX)
}

/// Joins `n` viewers of `streams` (round robin) at once through one queue; returns
/// each join's request and answer.
async fn crowd(
    upstream: &FakeControlPlane,
    streams: &[String],
    n: usize,
) -> Vec<(JoinSessionRequest, Answer)> {
    let joins = Joins::new(Upstream::new(&upstream.url, None, "unit-test-service-token").unwrap());
    let requests: Vec<_> = (0..n)
        .map(|i| request(&streams[i % streams.len()], i))
        .collect();
    let answers = join_all(requests.iter().cloned().map(|r| joins.join(r))).await;
    requests.into_iter().zip(answers).collect()
}

#[tokio::test]
async fn a_crowd_is_joined_in_a_few_batches_and_every_socket_gets_its_own_answer() {
    let upstream = FakeControlPlane::start().await;
    upstream.answer_batches();
    let streams = [
        name(upstream.add_stream("ann")),
        name(upstream.add_stream("bob")),
    ];
    let answers = crowd(&upstream, &streams, 200).await;

    for (request, answer) in &answers {
        let joined = answer.as_ref().expect("every join succeeds");
        assert_eq!(
            upstream.viewer_of(&joined.session_id).as_deref(),
            Some(request.viewer_id.as_str()),
            "{} got the session of another join",
            request.viewer_id
        );
        assert_eq!((joined.viewer_count, joined.peak_viewers), (VIEWERS, PEAK));
    }
    let mut sessions: Vec<_> = answers
        .iter()
        .map(|(_, a)| a.as_ref().unwrap().session_id.clone())
        .collect();
    sessions.sort_unstable();
    sessions.dedup();
    assert_eq!(sessions.len(), 200, "every join got a session of its own");
    let calls = upstream.join_calls();
    assert_eq!(calls.iter().sum::<usize>(), 200, "each join was asked once");
    assert!(
        calls.len() <= 2 * IN_FLIGHT,
        "200 joins at once took {} calls: {calls:?}",
        calls.len()
    );
}

#[tokio::test]
async fn a_join_that_fails_in_a_batch_fails_alone() {
    let upstream = FakeControlPlane::start().await;
    upstream.answer_batches();
    let known = name(upstream.add_stream("ann"));
    let unknown = name(uuid::Uuid::new_v4());
    let answers = crowd(&upstream, &[known.clone(), unknown.clone()], 40).await;

    assert!(
        upstream.join_calls().iter().any(|&n| n > 1),
        "the joins went out in batches: {:?}",
        upstream.join_calls()
    );
    for (request, answer) in answers {
        match answer {
            Ok(_) => assert_eq!(request.name, known),
            Err(status) => {
                assert_eq!(request.name, unknown);
                assert_eq!(status.code(), Code::NotFound, "{status:?}");
            }
        }
    }
}

#[tokio::test]
async fn a_control_plane_without_batches_gets_one_call_per_join() {
    let upstream = FakeControlPlane::start().await;
    let stream = name(upstream.add_stream("ann"));
    let answers = crowd(&upstream, &[stream], 40).await;

    assert!(answers.iter().all(|(_, a)| a.is_ok()), "{answers:?}");
    let calls = upstream.join_calls();
    assert_eq!(calls, vec![1; 40], "one JoinSession per join");
}

#[tokio::test]
async fn a_lone_join_goes_out_at_once_as_join_session() {
    let upstream = FakeControlPlane::start().await;
    upstream.answer_batches();
    let stream = name(upstream.add_stream("ann"));
    let joins = Joins::new(Upstream::new(&upstream.url, None, "unit-test-service-token").unwrap());
    for i in 0..3 {
        joins.join(request(&stream, i)).await.unwrap();
    }
    assert_eq!(upstream.join_calls(), [1, 1, 1]);
}

#[tokio::test]
async fn a_socket_that_stops_waiting_cancels_no_one_else() {
    let upstream = FakeControlPlane::start().await;
    upstream.answer_batches();
    let arrived = upstream.batch_arrived();
    let stream = name(upstream.add_stream("ann"));
    let joins = Joins::new(Upstream::new(&upstream.url, None, "unit-test-service-token").unwrap());
    // Four lone joins take every call place; the quitter queues first for the next
    // place, so it carries the batch of the twenty queued behind it, and it gives up
    // the moment that batch reaches the control plane.
    let lone = join_all((0..IN_FLIGHT).map(|i| joins.join(request(&stream, i))));
    let quitter = async {
        tokio::select! {
            biased;
            () = arrived.notified() => None,
            answer = joins.join(request(&stream, 100)) => Some(answer),
        }
    };
    let rest = join_all((0..20).map(|i| joins.join(request(&stream, 200 + i))));
    let (lone, quit, rest) = tokio::join!(lone, quitter, rest);

    assert!(
        quit.is_none(),
        "the quitter gave up while its batch was out"
    );
    assert!(lone.iter().all(Result::is_ok), "{lone:?}");
    for answer in &rest {
        assert!(answer.is_ok(), "a join the quitter carried: {answer:?}");
    }
    assert_eq!(upstream.join_calls(), [1, 1, 1, 1, 21]);
}
