//! TLS and authentication against real nats-servers, on both clients: trusted and untrusted certificates,
//! upgrades from `nats://`, mutual TLS, `require_tls`, TLS-first, stalled handshakes, large payloads and bursts
//! through the TLS layer, reconnecting over TLS, every credential kind (token, user/password, nkey, JWT creds
//! file, creds text, JWT plus seed, callback), the backoff after refused credentials, permissions, and secrets
//! kept out of errors and `Debug` output. Features both server versions have run on both.
//!
//! Each case is written once, generic over `conformance::TestClient`; the `suite!` macro instantiates it as a
//! `#[test]` in module `blocking` (on `nats_blocking::Client`) and in module `tokio` (on
//! `conformance::TokioClient`), each under `conformance::within`.
//!
//! The case only one client can have stays with that client's tests: TLS on the smol runtime
//! (`nats-tokio/tests/security.rs`).

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod auth;
mod callbacks;
mod jwt;
mod permissions;
mod secrets;
mod support;
mod tls;
mod tls_handshake;
mod tls_load;
mod tls_reconnect;
mod tls_refused;

suite! {
    tls::tls_with_a_trusted_ca_over_tls_urls_and_upgraded_nats_urls,
    tls::nats_url_upgrades_to_tls_when_the_server_requires_it,
    tls::a_server_offering_tls_is_upgraded_to_only_when_asked,
    tls::a_configured_ca_makes_tls_required_even_for_a_nats_url,
    tls_load::tls_carries_large_payloads_and_bursts_complete_and_in_order,
    tls_load::tls_carries_a_one_mib_payload_and_a_burst_between_connections,
    tls_load::concurrent_publishers_and_receivers_share_one_tls_connection,
    tls_load::close_over_tls_writes_what_is_buffered,
    tls_refused::untrusted_server_certificate_fails_fast_with_a_tls_error,
    tls_refused::trusting_the_wrong_ca_fails_fast_with_a_tls_error,
    tls_refused::wrong_host_certificate_fails_fast_with_a_tls_error,
    tls_refused::dangerous_accept_any_server_certificate_connects_to_untrusted_servers,
    tls_refused::mutual_tls_with_and_without_a_client_certificate,
    tls_refused::unreadable_tls_files_fail_connect_at_once_with_an_options_error,
    tls_refused::require_tls_against_a_plain_server_fails_with_tls_unavailable,
    tls_handshake::tls_first_connects_to_a_handshake_first_server,
    tls_handshake::without_tls_first_a_handshake_first_server_times_out_in_bounded_time,
    tls_handshake::tls_first_against_a_classic_tls_server_fails_with_a_tls_error,
    tls_handshake::handshake_first_with_fallback_accepts_both_kinds_of_client,
    tls_handshake::a_stalled_tls_handshake_fails_within_the_connect_timeout,
    tls_handshake::a_stalled_tls_handshake_ends_at_the_connect_timeout,
    tls_handshake::the_connect_timeout_bounds_the_info_wait_and_the_tls_handshake_together,
    tls_reconnect::reconnects_over_tls_after_a_restart,
    tls_reconnect::tls_cluster_failover_to_a_discovered_server,
    tls_reconnect::tls_is_never_dropped_on_reconnect_when_required,
    tls_reconnect::retry_on_initial_connect_with_an_untrusted_certificate_backs_off,
    auth::token_authentication,
    auth::user_and_password_authentication,
    auth::tls_and_credentials_combine,
    auth::nkey_authentication,
    auth::a_bad_nkey_seed_fails_connect_at_once_without_showing_the_seed,
    auth::retry_on_initial_connect_with_refused_credentials_backs_off,
    auth::refused_credentials_with_retry_on_initial_connect_back_off,
    jwt::jwt_authentication_with_creds_files_creds_text_and_jwt_plus_seed,
    jwt::unreadable_or_invalid_creds_fail_connect_at_once_without_showing_secrets,
    jwt::a_rotated_creds_file_is_read_again_at_every_connect,
    jwt::an_expiring_user_is_disconnected_over_tls_with_a_typed_error,
    callbacks::credentials_callback_signs_each_handshake_nonce,
    callbacks::credentials_callback_signs_the_servers_nonce,
    callbacks::credentials_callback_supplies_user_and_password,
    permissions::permission_violations_end_only_the_denied_subscription_and_keep_the_connection,
    permissions::jwt_permissions_with_a_denied_subject_inside_an_allowed_one,
    permissions::a_denied_reply_inbox_fails_requests_at_once_with_a_permission_error,
}
