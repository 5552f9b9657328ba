<?php
/**
 * Test only, the baseline of the timing comparison: what Ultimate Multisite's
 * Closte integration does, in the request that creates the site. A form POST
 * of apikey, domain and wildcard to Closte's adddomainalias, synchronous, with
 * its 45 s timeout; here Closte is the simulator (CLOSTE_E2E_DIRECT_URL).
 *
 * @package Closte_Operator
 */

add_action(
	'wp_initialize_site',
	function ( $site ) {
		$domain = $site->domain;
		wp_remote_post(
			CLOSTE_E2E_DIRECT_URL . '/adddomainalias',
			array(
				'timeout'    => 45,
				'user-agent' => 'WP-Ultimo-Closte-Integration/2.0',
				'body'       => array(
					'apikey'   => CLOSTE_CLIENT_API_KEY,
					'domain'   => $domain,
					'wildcard' => str_starts_with( $domain, '*.' ) ? 1 : 0,
				),
			)
		);
	},
	100
);
