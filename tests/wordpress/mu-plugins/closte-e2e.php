<?php
/**
 * Test only, never in wordpress/: helpers of the end-to-end test network.
 *
 * - No mail: Debian's test machines have no sendmail, and site creation
 *   mails the admin.
 * - No update checks: the test machine is offline (WP_HTTP_BLOCK_EXTERNAL),
 *   and core turns each refused check into a PHP warning.
 * - A one-time login: `wp-tool.php login-token` stores a token; a request
 *   with `?closte_e2e_login=TOKEN` logs that user in and redirects, so a
 *   headless browser can open the network admin.
 *
 * @package Closte_Operator
 */

add_filter( 'pre_wp_mail', '__return_true' );

add_action(
	'init',
	function () {
		remove_action( 'admin_init', '_maybe_update_core' );
		remove_action( 'admin_init', '_maybe_update_plugins' );
		remove_action( 'admin_init', '_maybe_update_themes' );
		remove_action( 'init', 'wp_schedule_update_checks' );
	},
	0
);

add_action(
	'init',
	function () {
		if ( empty( $_GET['closte_e2e_login'] ) ) {
			return;
		}
		$stored = get_site_option( 'closte_e2e_login' );
		delete_site_option( 'closte_e2e_login' );
		$token = (string) wp_unslash( $_GET['closte_e2e_login'] );
		if ( ! is_array( $stored ) || $stored['expires'] < time() || ! hash_equals( $stored['hash'], hash( 'sha256', $token ) ) ) {
			wp_die( 'invalid login token', '', array( 'response' => 403 ) );
		}
		wp_set_auth_cookie( (int) $stored['user'], false );
		wp_safe_redirect( $stored['redirect'] );
		exit;
	},
	1
);

/*
 * Ultimate Multisite's settings API, as far as the plugin reads it: present
 * once a test sets `closte_e2e_um_interval` (its "DNS Check Interval").
 */
if ( ! function_exists( 'wu_get_setting' ) && false !== get_site_option( 'closte_e2e_um_interval', false ) ) {
	/**
	 * Ultimate Multisite's setting reader.
	 *
	 * @param string $name     Setting.
	 * @param mixed  $fallback Default.
	 * @return mixed
	 */
	function wu_get_setting( $name, $fallback = false ) {
		return 'dns_check_interval' === $name ? get_site_option( 'closte_e2e_um_interval' ) : $fallback;
	}
}

/*
 * A request with the header X-Closte-E2E-Queries writes the SQL it ran to
 * wp-content/closte-e2e-queries.json: what a page load costs.
 */
if ( isset( $_SERVER['HTTP_X_CLOSTE_E2E_QUERIES'] ) ) {
	if ( ! defined( 'SAVEQUERIES' ) ) {
		define( 'SAVEQUERIES', true );
	}
	add_action(
		'shutdown',
		function () {
			global $wpdb;
			file_put_contents( WP_CONTENT_DIR . '/closte-e2e-queries.json', wp_json_encode( array_column( (array) $wpdb->queries, 0 ) ) );
		},
		PHP_INT_MAX
	);
}
