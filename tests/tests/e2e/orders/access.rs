//! Who may order and see what: orders outside a live sale are refused, the per-buyer
//! rate limit answers with `Retry-After`, buyers see only their own orders.

use flash_sale_client::{AdminOrderListQry, ErrorCode, OrderPayCmd, OrderStatusDto, PageQry};
use flash_sale_tests::{Backend, TestApp, online_product, product, running_event};

use super::*;

crate::on_every_stack!(
    orders_are_refused_outside_a_live_sale,
    order_placements_over_the_per_buyer_rate_are_refused_with_retry_after,
    buyers_see_only_their_own_orders_and_admins_see_all,
);

async fn orders_are_refused_outside_a_live_sale(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let buyer = t.buyer("lee");
    let draft = t
        .admin
        .create_event(&running_event("Draft", None))
        .await
        .expect("event");
    let in_draft = t
        .admin
        .create_product(draft.id, &product("P", 5, 2))
        .await
        .expect("product");
    assert_code(
        buyer.place_order(&cmd(in_draft.id, 1), None).await,
        ErrorCode::NotOnSale,
    );

    let mut later = running_event("Later", None);
    later.starts_at = flash_sale_tests::minutes_from_now(60);
    later.ends_at = flash_sale_tests::minutes_from_now(120);
    let later = t.admin.create_event(&later).await.expect("event");
    let in_later = t
        .admin
        .create_product(later.id, &product("P", 5, 2))
        .await
        .expect("product");
    t.admin.event_online(later.id).await.expect("online");
    assert_code(
        buyer.place_order(&cmd(in_later.id, 1), None).await,
        ErrorCode::NotOnSale,
    );

    let (event, live) = online_product(&t.admin, 5, 2).await;
    t.admin.product_offline(live.id).await.expect("offline");
    assert_code(
        buyer.place_order(&cmd(live.id, 1), None).await,
        ErrorCode::NotOnSale,
    );
    t.admin.product_online(live.id).await.expect("online");
    assert_code(
        buyer.place_order(&cmd(live.id, 3), None).await,
        ErrorCode::LimitExceeded,
    );
    assert_code(
        buyer.place_order(&cmd(999_999, 1), None).await,
        ErrorCode::NotFound,
    );
    assert_code(
        buyer.place_order(&cmd(live.id, 0), None).await,
        ErrorCode::ValidationFailed,
    );
    created(
        buyer
            .place_order(&cmd(live.id, 2), None)
            .await
            .expect("on sale"),
    );
    t.admin.event_offline(event.id).await.expect("offline");
    assert_code(
        t.buyer("max").place_order(&cmd(live.id, 1), None).await,
        ErrorCode::NotOnSale,
    );

    for id in [in_draft.id, in_later.id] {
        assert!(t.snapshot(id).await.orders.is_empty());
    }
    t.snapshot(live.id).await.assert_invariants(2);
    t.stop().await;
}

async fn order_placements_over_the_per_buyer_rate_are_refused_with_retry_after(backend: Backend) {
    let t = TestApp::spawn_with(backend, |s| s.rate_limit.per_user_per_second = 2).await;
    let (_, p) = online_product(&t.admin, 100, 100).await;
    let (ned, ola) = (t.buyer("ned"), t.buyer("ola"));
    let mut limited = 0;
    for i in 0..6 {
        let response = ned
            .raw(
                "POST",
                "/api/v1/orders",
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", &format!("r{i}")),
                ],
                Some(
                    serde_json::json!({"product_id": p.id, "quantity": 1})
                        .to_string()
                        .into_bytes(),
                ),
            )
            .await
            .expect("answer");
        if response.status == 429 {
            limited += 1;
            assert_eq!(
                response.error().expect("envelope").code,
                ErrorCode::RateLimited
            );
            let retry: u64 = response.headers["retry-after"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("seconds");
            assert!((1..=2).contains(&retry));
        } else {
            assert_eq!(response.status, 201, "{}", response.text);
        }
    }
    assert!(limited >= 3, "a burst of 6 against 2/s: {limited} refused");
    created(
        ola.place_order(&cmd(p.id, 1), None)
            .await
            .expect("other buyers are not affected"),
    );
    let snapshot = t.snapshot(p.id).await;
    assert_eq!(
        snapshot.held(),
        6 - limited + 1,
        "a refused request consumed nothing"
    );
    snapshot.assert_invariants(100);
    t.stop().await;
}

async fn buyers_see_only_their_own_orders_and_admins_see_all(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (_, p) = online_product(&t.admin, 10, 2).await;
    let (jay, kim) = (t.buyer("jay"), t.buyer("kim"));
    let jays = created(jay.place_order(&cmd(p.id, 1), None).await.expect("order"));
    let kims = created(kim.place_order(&cmd(p.id, 2), None).await.expect("order"));

    assert_eq!(jay.order(&jays.id).await.expect("own").id, jays.id);
    assert_code(jay.order(&kims.id).await, ErrorCode::NotFound);
    assert_code(jay.order("not-an-id").await, ErrorCode::NotFound);
    assert_code(jay.cancel(&kims.id).await, ErrorCode::NotFound);
    let pay = OrderPayCmd {
        transaction_id: "t".into(),
        amount: kims.total_price,
    };
    assert_code(jay.pay(&kims.id, &pay).await, ErrorCode::NotFound);
    let listed = jay.orders(&PageQry::default()).await.expect("list");
    assert_eq!(
        listed.items.iter().map(|o| &o.id).collect::<Vec<_>>(),
        [&jays.id]
    );
    assert_code(t.admin.order(&kims.id).await, ErrorCode::NotFound);
    assert_code(
        jay.admin_orders(&AdminOrderListQry::default()).await,
        ErrorCode::Forbidden,
    );

    let all = t
        .admin
        .admin_orders(&AdminOrderListQry::default())
        .await
        .expect("all");
    assert_eq!(all.total, 2);
    let filtered = t
        .admin
        .admin_orders(&AdminOrderListQry {
            product_id: Some(p.id),
            status: Some(OrderStatusDto::PendingPayment),
            page: Some(1),
            page_size: Some(1),
        })
        .await
        .expect("filtered");
    assert_eq!((filtered.total, filtered.items.len()), (2, 1));
    let none = t
        .admin
        .admin_orders(&AdminOrderListQry {
            status: Some(OrderStatusDto::Paid),
            ..Default::default()
        })
        .await
        .expect("none");
    assert_eq!(none.total, 0);
    t.stop().await;
}
