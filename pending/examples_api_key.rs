// The API-key variant of every example, through `examples/run LANG` with `PARTNER_API_KEY` set,
// against both services. NOT compiled here: these items go at the end of `tests/examples.rs`
// once the services know API keys. They use that file's `system`, `run_with`, `issued`,
// `spawn_proxy`, `LANGS` and `X_API_KEY`, and `TestAuth::api_key_client(partner, scopes)`, which
// creates a client with the `api_key` authentication method and returns it with its plaintext
// key.

/// Runs `examples/run LANG` with only the API-key variant's two variables.
async fn run_api_key_example(lang: &str, api_url: &str, key: &str, cache: &Path) -> Run {
    let settings = [("PARTNER_API_URL", api_url), ("PARTNER_API_KEY", key)];
    run_with(lang, &settings, cache).await
}

/// The API's first page of orders for the key, as the API answers it.
async fn orders_with_key(api: &TestApi, key: &str) -> Value {
    let response = common::http()
        .get(api.url("/v1/orders"))
        .header(X_API_KEY, key)
        .send()
        .await
        .expect("partner API request");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_key_example_prints_the_partners_first_page_of_orders_and_asks_for_no_token() {
    let (auth, api) = system(|_| {}).await;
    let (client, key) = auth.api_key_client("globex", "orders:read").await;
    let expected = orders_with_key(&api, &key).await;
    let items = expected["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|order| order["partner_id"] == "globex"));
    // A token client of another partner, whose settings are also in the environment of the
    // second run: with PARTNER_API_KEY set, `examples/run` must use the key and ignore them.
    let (other, other_secret) = auth.client("acme", "orders:read").await;
    let token_url = auth.url("/oauth2/token");
    let cache = tempfile::tempdir().unwrap();

    for lang in LANGS {
        let run = run_api_key_example(lang, &api.base_url, &key, cache.path()).await;
        assert_eq!(run.json(lang), expected, "{lang}");
        assert!(!run.stderr.contains(&key), "{lang} showed the key");

        let everything = [
            ("PARTNER_TOKEN_URL", token_url.as_str()),
            ("PARTNER_API_URL", api.base_url.as_str()),
            ("PARTNER_CLIENT_ID", other.client_id.as_str()),
            ("PARTNER_CLIENT_SECRET", other_secret.expose()),
            ("PARTNER_API_KEY", key.as_str()),
        ];
        let run = run_with(lang, &everything, cache.path()).await;
        assert_eq!(run.json(lang), expected, "{lang} with the token settings too");
    }
    assert_eq!(
        issued(&auth, client.client_id.as_str()).await,
        0,
        "no token for the key's client"
    );
    assert_eq!(
        issued(&auth, other.client_id.as_str()).await,
        0,
        "the token variant did not run"
    );
    assert_eq!(
        std::fs::read_dir(cache.path()).unwrap().count(),
        0,
        "the shell example cached no token"
    );
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_key_example_reports_a_wrong_key_and_a_missing_scope_without_showing_the_key() {
    let (auth, api) = system(|_| {}).await;
    let (_, key) = auth.api_key_client("acme", "orders:read").await;
    let (_, unscoped_key) = auth.api_key_client("acme", "catalog:read").await;
    let wrong = format!("{key}x");
    let cache = tempfile::tempdir().unwrap();
    for lang in LANGS {
        let run = run_api_key_example(lang, &api.base_url, &wrong, cache.path()).await;
        assert!(!run.success, "{lang} succeeded with a wrong key");
        assert!(run.stdout.is_empty(), "{lang} printed {}", run.stdout);
        assert!(
            run.stderr.contains("invalid_token"),
            "{lang}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("PARTNER_API_KEY"),
            "{lang} does not say what to check: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains(&wrong) && !run.stderr.contains(&key),
            "{lang} showed the key"
        );

        let run = run_api_key_example(lang, &api.base_url, &unscoped_key, cache.path()).await;
        assert!(!run.success, "{lang} succeeded without the scope");
        assert!(run.stdout.is_empty(), "{lang} printed {}", run.stdout);
        assert!(
            run.stderr.contains("insufficient_scope"),
            "{lang}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("orders:read"), "{lang}: {}", run.stderr);
        assert!(!run.stderr.contains(&unscoped_key), "{lang} showed the key");
    }
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_key_example_names_a_missing_url_and_reports_an_unreachable_api() {
    let (auth, api) = system(|_| {}).await;
    let (_, key) = auth.api_key_client("acme", "orders:read").await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let cache = tempfile::tempdir().unwrap();
    for lang in LANGS {
        let run = run_with(lang, &[("PARTNER_API_KEY", key.as_str())], cache.path()).await;
        assert!(
            !run.success && run.stdout.is_empty(),
            "{lang} without PARTNER_API_URL"
        );
        assert!(
            run.stderr.contains("PARTNER_API_URL"),
            "{lang} does not name PARTNER_API_URL: {}",
            run.stderr
        );

        let run = run_api_key_example(lang, &closed, &key, cache.path()).await;
        assert!(!run.success && run.stdout.is_empty(), "{lang} with no API");
        assert!(
            run.stderr.starts_with("error") || run.stderr.contains("\nerror"),
            "{lang}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains(&key), "{lang} showed the key");
    }
    api.stop().await;
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_key_example_waits_out_a_429_as_retry_after_asks_and_then_succeeds() {
    // One request a second per client, no burst.
    let (auth, api) = system(|settings| {
        let one = std::num::NonZeroU32::new(1).unwrap();
        settings.rate_limit_per_second = one;
        settings.rate_limit_burst = one;
    })
    .await;
    let proxy = spawn_proxy(&api).await;
    let (_, key) = auth.api_key_client("acme", "orders:read").await;
    let expected = orders_with_key(&api, &key).await;
    let cache = tempfile::tempdir().unwrap();
    for lang in LANGS {
        // The example's first request arrives just after one with the same key: the API
        // answers it 429 with Retry-After.
        let me_url = format!("{}/v1/me", api.base_url);
        let spender = key.clone();
        proxy.before_next_request(Box::new(move |_authorization: String| {
            Box::pin(async move {
                common::http()
                    .get(&me_url)
                    .header(X_API_KEY, spender)
                    .send()
                    .await
                    .unwrap();
            })
        }));
        let run = run_api_key_example(lang, &proxy.url, &key, cache.path()).await;
        assert_eq!(run.json(lang), expected, "{lang}");
        assert!(
            run.stderr.contains("rate limited"),
            "{lang} met no 429: {}",
            run.stderr
        );
        assert!(!run.stderr.contains(&key), "{lang} showed the key");
    }
    api.stop().await;
    auth.stop().await;
}
