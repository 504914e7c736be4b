//! The catalogue lifecycle: admins build and publish events and products; buyers see
//! exactly what is online.

use flash_sale_client::{
    ErrorCode, EventListQry, EventPatchCmd, EventStatusDto, PageQry, ProductPatchCmd,
    ProductStatusDto, StrategyDto,
};
use flash_sale_tests::{Backend, TestApp, minutes_from_now, product, running_event};

crate::on_every_stack!(
    the_whole_catalogue_lifecycle_works_as_admins_and_buyers_expect,
    a_buyer_never_sees_draft_or_offline_events_or_their_products,
    admins_list_events_by_status_and_page,
    stock_moves_in_and_out_and_every_move_is_in_the_ledger,
    products_in_a_buckets_event_get_the_configured_bucket_count,
);

async fn the_whole_catalogue_lifecycle_works_as_admins_and_buyers_expect(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let buyer = t.buyer("alice");

    let cmd = running_event("Singles Day", Some(StrategyDto::Sync));
    let event = t.admin.create_event(&cmd).await.expect("created");
    assert_eq!(event.status, EventStatusDto::Draft);
    assert_eq!(event.title, "Singles Day");
    assert_eq!(event.description, "Singles Day — test event");
    assert_eq!(
        (event.starts_at, event.ends_at),
        (cmd.starts_at, cmd.ends_at)
    );
    assert_eq!(event.strategy, Some(StrategyDto::Sync));
    assert_eq!(event.effective_strategy, StrategyDto::Sync);

    let empty = t
        .admin
        .event_online(event.id)
        .await
        .expect_err("no products");
    assert_eq!(empty.code(), Some(ErrorCode::InvalidState));

    let phone = t
        .admin
        .create_product(event.id, &product("Phone", 100, 2))
        .await
        .expect("product");
    assert_eq!(phone.status, ProductStatusDto::Online);
    assert_eq!((phone.stock_total, phone.stock_available), (100, 100));
    assert_eq!(phone.bucket_count, 1);
    assert!(!phone.sold_out);
    assert_eq!(
        (
            phone.original_price,
            phone.flash_price,
            phone.per_user_limit
        ),
        (10_000, 4_999, 2)
    );

    let online = t.admin.event_online(event.id).await.expect("online");
    assert_eq!(online.status, EventStatusDto::Online);
    let again = t.admin.event_online(event.id).await.expect("idempotent");
    assert_eq!(again.status, EventStatusDto::Online);

    let listed = buyer.events(&PageQry::default()).await.expect("list");
    assert_eq!(
        listed.items.iter().map(|e| e.id).collect::<Vec<_>>(),
        [event.id]
    );
    let detail = buyer.event(event.id).await.expect("detail");
    assert_eq!(detail.products.len(), 1);
    assert_eq!(detail.products[0].id, phone.id);
    assert_eq!(
        buyer.product(phone.id).await.expect("product").title,
        "Phone"
    );

    let locked = t
        .admin
        .patch_event(
            event.id,
            &EventPatchCmd {
                title: Some("Renamed".into()),
                ..Default::default()
            },
        )
        .await
        .expect_err("online events are locked");
    assert_eq!(locked.code(), Some(ErrorCode::InvalidState));

    let renamed = t
        .admin
        .patch_product(
            phone.id,
            &ProductPatchCmd {
                title: Some("Phone X".into()),
                flash_price: Some(3_999),
                per_user_limit: Some(3),
                ..Default::default()
            },
        )
        .await
        .expect("products may change while online");
    assert_eq!(
        (
            renamed.title.as_str(),
            renamed.flash_price,
            renamed.per_user_limit
        ),
        ("Phone X", 3_999, 3)
    );
    assert_eq!(
        buyer.product(phone.id).await.expect("product").flash_price,
        3_999
    );

    let offline = t.admin.event_offline(event.id).await.expect("offline");
    assert_eq!(offline.status, EventStatusDto::Offline);
    let patched = t
        .admin
        .patch_event(
            event.id,
            &EventPatchCmd {
                title: Some("Singles Day II".into()),
                ends_at: Some(minutes_from_now(48 * 60)),
                strategy: Some(None),
                ..Default::default()
            },
        )
        .await
        .expect("offline events may change");
    assert_eq!(patched.title, "Singles Day II");
    assert_eq!(patched.strategy, None);
    assert_eq!(patched.effective_strategy, StrategyDto::Sync);
    t.admin.event_online(event.id).await.expect("back online");

    let admin_view = t.admin.admin_event(event.id).await.expect("admin detail");
    assert_eq!(admin_view.event.title, "Singles Day II");
    assert_eq!(admin_view.products.len(), 1);
    t.stop().await;
}

async fn a_buyer_never_sees_draft_or_offline_events_or_their_products(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let buyer = t.buyer("bob");
    let draft = t
        .admin
        .create_event(&running_event("Draft", None))
        .await
        .expect("draft");
    let draft_product = t
        .admin
        .create_product(draft.id, &product("Hidden", 5, 1))
        .await
        .expect("product");

    let not_found =
        |e: flash_sale_client::ClientError| assert_eq!(e.code(), Some(ErrorCode::NotFound));
    not_found(buyer.event(draft.id).await.expect_err("draft is invisible"));
    not_found(
        buyer
            .product(draft_product.id)
            .await
            .expect_err("its product too"),
    );
    assert!(
        buyer
            .events(&PageQry::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );

    t.admin.event_online(draft.id).await.expect("online");
    assert!(buyer.event(draft.id).await.is_ok());
    let second = t
        .admin
        .create_product(draft.id, &product("Second", 5, 1))
        .await
        .expect("second");
    t.admin
        .product_offline(second.id)
        .await
        .expect("product offline");
    let detail = buyer.event(draft.id).await.expect("visible");
    assert_eq!(
        detail.products.iter().map(|p| p.id).collect::<Vec<_>>(),
        [draft_product.id],
        "offline products are not listed"
    );

    t.admin.event_offline(draft.id).await.expect("offline");
    not_found(
        buyer
            .event(draft.id)
            .await
            .expect_err("offline is invisible"),
    );
    not_found(
        buyer
            .product(draft_product.id)
            .await
            .expect_err("its products too"),
    );
    assert!(
        buyer
            .events(&PageQry::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    not_found(buyer.event(999_999).await.expect_err("unknown"));
    not_found(buyer.product(999_999).await.expect_err("unknown"));
    t.stop().await;
}

async fn admins_list_events_by_status_and_page(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let e = t
            .admin
            .create_event(&running_event(&format!("E{i}"), None))
            .await
            .expect("event");
        ids.push(e.id);
    }
    t.admin
        .create_product(ids[1], &product("P", 1, 1))
        .await
        .expect("product");
    t.admin.event_online(ids[1]).await.expect("online");

    let all = t
        .admin
        .admin_events(&EventListQry {
            page_size: Some(2),
            ..Default::default()
        })
        .await
        .expect("page 1");
    assert_eq!(all.total, 5);
    assert_eq!((all.page, all.page_size), (1, 2));
    assert_eq!(
        all.items.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ids[4], ids[3]],
        "newest first"
    );
    let last = t
        .admin
        .admin_events(&EventListQry {
            page: Some(3),
            page_size: Some(2),
            ..Default::default()
        })
        .await
        .expect("page 3");
    assert_eq!(
        last.items.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ids[0]]
    );
    let online = t
        .admin
        .admin_events(&EventListQry {
            status: Some(EventStatusDto::Online),
            ..Default::default()
        })
        .await
        .expect("online only");
    assert_eq!((online.total, online.items[0].id), (1, ids[1]));
    let drafts = t
        .admin
        .admin_events(&EventListQry {
            status: Some(EventStatusDto::Draft),
            ..Default::default()
        })
        .await
        .expect("drafts");
    assert_eq!(drafts.total, 4);
    t.stop().await;
}

async fn stock_moves_in_and_out_and_every_move_is_in_the_ledger(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let event = t
        .admin
        .create_event(&running_event("Stock", None))
        .await
        .expect("event");
    let mut cmd = product("Split", 10, 1);
    cmd.bucket_count = Some(3);
    let p = t
        .admin
        .create_product(event.id, &cmd)
        .await
        .expect("product");
    assert_eq!(p.bucket_count, 3);

    let ledger = t
        .admin
        .ledger(p.id, &PageQry::default())
        .await
        .expect("ledger");
    let created: Vec<(u32, i64, &str)> = ledger
        .items
        .iter()
        .map(|e| (e.bucket_no, e.delta, e.reason.as_str()))
        .collect();
    assert_eq!(
        created,
        [
            (0, 4, "stock_added"),
            (1, 3, "stock_added"),
            (2, 3, "stock_added")
        ]
    );

    let more = t.admin.product_stock(p.id, 5).await.expect("add");
    assert_eq!((more.stock_total, more.stock_available), (15, 15));
    let less = t
        .admin
        .product_stock(p.id, -12)
        .await
        .expect("remove unsold");
    assert_eq!((less.stock_total, less.stock_available), (3, 3));
    let too_many = t
        .admin
        .product_stock(p.id, -4)
        .await
        .expect_err("only 3 unsold");
    assert_eq!(too_many.code(), Some(ErrorCode::InvalidState));
    assert_eq!(
        t.admin
            .admin_event(event.id)
            .await
            .expect("detail")
            .products[0]
            .stock_total,
        3
    );

    let ledger = t
        .admin
        .ledger(
            p.id,
            &PageQry {
                page: None,
                page_size: Some(100),
            },
        )
        .await
        .expect("ledger");
    assert_eq!(
        ledger.items.iter().map(|e| e.delta).sum::<i64>(),
        3,
        "Σ ledger = available"
    );
    assert!(ledger.items.iter().any(|e| e.reason == "stock_removed"));
    let page = t
        .admin
        .ledger(
            p.id,
            &PageQry {
                page: Some(2),
                page_size: Some(2),
            },
        )
        .await
        .expect("page 2");
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.total, ledger.total);
    t.stop().await;
}

async fn products_in_a_buckets_event_get_the_configured_bucket_count(backend: Backend) {
    let t = TestApp::spawn_with(backend, |s| s.ordering.bucket_count = 5).await;
    let event = t
        .admin
        .create_event(&running_event("Hot", Some(StrategyDto::Buckets)))
        .await
        .expect("event");
    assert_eq!(event.effective_strategy, StrategyDto::Buckets);
    let p = t
        .admin
        .create_product(event.id, &product("Hot", 12, 1))
        .await
        .expect("product");
    assert_eq!(p.bucket_count, 5);
    let mut explicit = product("Explicit", 12, 1);
    explicit.bucket_count = Some(2);
    assert_eq!(
        t.admin
            .create_product(event.id, &explicit)
            .await
            .expect("product")
            .bucket_count,
        2
    );
    t.stop().await;
}
